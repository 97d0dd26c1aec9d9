/* Edge coverage for fuzzing _kscan with gcc (no clang/libFuzzer here).
 *
 * _kscan.c is compiled with -fsanitize-coverage=trace-pc: gcc then calls __sanitizer_cov_trace_pc() at
 * every basic block. This file (compiled without that flag) hashes (previous block, this block) into an
 * AFL-style map that the Python fuzz loop (tests/fuzz/kscan_fuzz.py) reads through ctypes: an input that
 * sets a map byte no earlier input set reached new code and is kept in the corpus.
 */
#include <stdint.h>
#include <string.h>

#define KFUZZ_MAP_SIZE (1u << 16)

unsigned char kfuzz_map[KFUZZ_MAP_SIZE];
static uintptr_t kfuzz_prev;

void __sanitizer_cov_trace_pc(void) {
    uintptr_t pc = (uintptr_t)__builtin_return_address(0);
    uintptr_t cur = (pc ^ (pc >> 12)) & (KFUZZ_MAP_SIZE - 1);
    unsigned char *b = &kfuzz_map[cur ^ kfuzz_prev];
    if (*b != 255) (*b)++;
    kfuzz_prev = cur >> 1;
}

void kfuzz_reset(void) {
    memset(kfuzz_map, 0, sizeof kfuzz_map);
    kfuzz_prev = 0;
}
