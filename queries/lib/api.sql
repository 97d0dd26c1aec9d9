-- lib/api: the class of every CUDA/HIP runtime and driver API call (api_classes), the one list of names.
--
-- A module of its own, apart from lib/runtime: lib/gpu_activity needs api_is_graph_launch, and lib/runtime's
-- runtime_calls needs gpu_activity (which calls launched an op), so one file would require itself.
-- Public: api_classes (ord, api_class, pattern), api_class_of(name), api_is_graph_launch(name).

-- Every CUDA/HIP runtime and driver API call has ONE class, from this table: the first row (by `ord`)
-- whose pattern fully matches the call's name, with a version or per-thread-stream suffix (_v2,
-- _v3, _ptsz, _ptds, _spt) ignored. Every analysis asks this table (through runtime_calls.api_class, computed once
-- per distinct name), never its own list of names. The classes:
--   graph_launch  replays a CUDA/HIP graph: one call, many GPU ops
--   launch        launches one kernel (cudaLaunchKernel, cuLaunchKernel(Ex), hipModuleLaunchKernel, ...)
--   blocking      the host waits inside the call until the GPU has caught up: stream/device/event/
--                 context synchronize and the synchronous copies (cudaMemcpy, hipMemcpyWithStream,
--                 cuMemcpyDtoH, ...): host time in them is sync stall, never launch overhead
--   stream_wait   a stream waits on the GPU for an event (cudaStreamWaitEvent): the host does not block
--   enqueue       asynchronous copies, memsets and host functions put on a stream (cudaMemcpyAsync,
--                 cudaMemsetAsync, hipMemsetD32Async, cudaLaunchHostFunc, ...)
--   query         non-blocking status queries (cudaEventQuery, cudaStreamQuery)
--   memory        allocation and registration (cudaMalloc, cudaFree, cudaHostAlloc, hipMallocAsync, ...)
--   bookkeeping   events, streams, graphs, modules, attributes and errors (cudaEventRecord,
--                 cudaStreamIsCapturing, cudaFuncGetAttributes, cudaGetDevice, cudaGetLastError, ...)
--   other         anything else (a call of class `other` that launched a kernel counts as `launch`:
--                 runtime_calls.api_class)
-- A step's host time on its thread is split by class in steps.sql (host_*_ns).
CREATE OR REPLACE TEMP TABLE api_classes(ord, api_class, pattern) AS VALUES
    (1, 'graph_launch', '(cuda|hip|cu)GraphLaunch'),
    (2, 'launch', '(cuda|hip)(LaunchKernel|LaunchKernelExC|LaunchKernelEx|LaunchCooperativeKernel'
                  || '|LaunchCooperativeKernelMultiDevice|LaunchByPtr)'
                  || '|hip(ModuleLaunchKernel|ExtModuleLaunchKernel|HccModuleLaunchKernel|ExtLaunchKernel'
                  || '|ExtLaunchMultiKernelMultiDevice|ModuleLaunchCooperativeKernel|LaunchKernelGGL)'
                  || '|cu(LaunchKernel|LaunchKernelEx|LaunchCooperativeKernel|LaunchCooperativeKernelMultiDevice'
                  || '|LaunchGrid|LaunchGridAsync)'),
    (3, 'blocking', '(cuda|hip)(StreamSynchronize|DeviceSynchronize|EventSynchronize|ThreadSynchronize'
                    || '|Memcpy|Memcpy2D|Memcpy3D|MemcpyDtoH|MemcpyHtoD|MemcpyDtoD|MemcpyFromSymbol|MemcpyToSymbol'
                    || '|MemcpyPeer|MemcpyWithStream|MemcpyParam2D|MemcpyAtoH|MemcpyHtoA)'
                    || '|cu(StreamSynchronize|CtxSynchronize|EventSynchronize|MemcpyDtoH|MemcpyHtoD|MemcpyDtoD|Memcpy'
                    || '|Memcpy2D|Memcpy3D|MemcpyPeer)'),
    (4, 'stream_wait', '(cuda|hip|cu)StreamWaitEvent'),
    (5, 'enqueue', '(cuda|hip|cu)(Memcpy|Memset)[A-Za-z0-9]*Async'
                   || '|(cuda|hip)(Memset|Memset2D|Memset3D|MemsetD8|MemsetD16|MemsetD32)'
                   || '|cuMemsetD(8|16|32|2D8|2D16|2D32)|(cuda|hip)LaunchHostFunc|cuLaunchHostFunc'
                   || '|(cuda|hip)MemPrefetchAsync|cuMemPrefetchAsync'),
    (6, 'query', '(cuda|hip|cu)(EventQuery|StreamQuery)'),
    (7, 'memory', '(cuda|hip|cu)(Malloc|Free|Mem|Host|Array|Ipc)[A-Za-z0-9]*|hipExtMallocWithFlags'
                  || '|cuMemAlloc[A-Za-z0-9]*'),
    (8, 'bookkeeping', '(cuda|hip|cu)(Event|Stream|Graph|Ctx|Device|Func|Module|Get|Set|Peek|Occupancy|Driver|Runtime'
                       || '|Profiler|Init|Pointer|Kernel|Library|Thread|UserObject|Chip)[A-Za-z0-9]*'),
    (9, 'other', '.*');

-- The class of one API name (the suffix rule above). Used once per distinct name.
CREATE OR REPLACE TEMP MACRO api_class_of(n) AS (
    SELECT c.api_class FROM api_classes c
    WHERE regexp_full_match(regexp_replace(n, '(_v[0-9]+|_ptsz|_ptds|_spt)+$', ''), c.pattern)
    ORDER BY c.ord LIMIT 1);
CREATE OR REPLACE TEMP MACRO api_is_graph_launch(n) AS coalesce(contains(n, 'GraphLaunch'), FALSE);
