// Graphs: built by capture or by a few node APIs, instantiated, uploaded and launched. A launch
// runs the graph's kernels on the device timeline one after another. Graph memory (the sum of the
// graph's allocation nodes) is taken from the device's graph pool when an executable graph is
// first uploaded or launched, reported by cuDeviceGetGraphMemAttribute, handed back to the pool
// by cuGraphExecDestroy and returned to the device by cuDeviceGraphMemTrim.
#include <algorithm>

#include "exports.hpp"
#include "process.hpp"

namespace xpu_fake {

CUresult graph_mem_reserve_locked(int dev, uint64_t bytes) {
  GraphMemPool& g = proc().graph_mem[dev];
  const uint64_t avail = g.reserved - g.used;
  if (bytes > avail) {
    const uint64_t grow = round_up(bytes - avail, kGranularity);
    if (!charge(dev, grow)) return CUDA_ERROR_OUT_OF_MEMORY;
    g.reserved += grow;
    g.reserved_high = std::max(g.reserved_high, g.reserved);
  }
  g.used += bytes;
  g.used_high = std::max(g.used_high, g.used);
  return CUDA_SUCCESS;
}

void graph_mem_release_locked(int dev, uint64_t bytes) {
  GraphMemPool& g = proc().graph_mem[dev];
  g.used -= std::min(g.used, bytes);
}

namespace {

CUresult add_node(CUgraphNode* out, CUgraph g, CUgraphNode_st node) {
  if (CUresult r = check_init(); r != CUDA_SUCCESS) return r;
  if (out == nullptr) return CUDA_ERROR_INVALID_VALUE;
  ProcLock lk;
  if (g == nullptr || proc().graphs.count(g) == 0) return CUDA_ERROR_INVALID_VALUE;
  g->nodes.push_back(std::make_unique<CUgraphNode_st>(node));
  if (node.kind == NodeKind::kMemAlloc) g->alloc_bytes += node.bytes;
  *out = g->nodes.back().get();
  return CUDA_SUCCESS;
}

CUresult instantiate(CUgraphExec* out, CUgraph g) {
  if (CUresult r = check_init(); r != CUDA_SUCCESS) return r;
  if (out == nullptr) return CUDA_ERROR_INVALID_VALUE;
  ProcLock lk;
  if (g == nullptr || proc().graphs.count(g) == 0) return CUDA_ERROR_INVALID_VALUE;
  CUctx_st* c = nullptr;
  if (CUresult r = require_ctx_locked(&c); r != CUDA_SUCCESS) return r;
  auto* e = new CUgraphExec_st{c->device, {}, g->alloc_bytes, false};
  for (const auto& n : g->nodes) {
    if (n->kind == NodeKind::kKernel) e->kernel_blocks.push_back(n->blocks);
  }
  proc().execs.insert(e);
  *out = e;
  return CUDA_SUCCESS;
}

CUresult reserve_exec_memory_locked(CUgraphExec e) {
  if (e->mem_reserved || e->alloc_bytes == 0) return CUDA_SUCCESS;
  if (CUresult r = graph_mem_reserve_locked(e->device, e->alloc_bytes); r != CUDA_SUCCESS) {
    return r;
  }
  e->mem_reserved = true;
  return CUDA_SUCCESS;
}

CUresult upload(CUgraphExec e, CUstream h, bool ptsz) {
  if (CUresult r = check_init(); r != CUDA_SUCCESS) return r;
  ProcLock lk;
  if (e == nullptr || proc().execs.count(e) == 0) return CUDA_ERROR_INVALID_VALUE;
  CUstream_st* s = nullptr;
  if (CUresult r = resolve_stream_locked(h, ptsz, &s); r != CUDA_SUCCESS) return r;
  return reserve_exec_memory_locked(e);
}

CUresult graph_launch(CUgraphExec e, CUstream h, bool ptsz) {
  if (CUresult r = check_init(); r != CUDA_SUCCESS) return r;
  ProcLock lk;
  if (e == nullptr || proc().execs.count(e) == 0) return CUDA_ERROR_INVALID_VALUE;
  CUstream_st* s = nullptr;
  if (CUresult r = resolve_stream_locked(h, ptsz, &s); r != CUDA_SUCCESS) return r;
  if (capturing(s)) {  // becomes part of the graph being captured
    Capture* c = s->capture;
    if (c->status != CU_STREAM_CAPTURE_STATUS_ACTIVE) return CUDA_ERROR_STREAM_CAPTURE_INVALIDATED;
    for (uint64_t b : e->kernel_blocks) {
      c->graph->nodes.push_back(
          std::make_unique<CUgraphNode_st>(CUgraphNode_st{NodeKind::kKernel, b, 0, 0}));
    }
    return CUDA_SUCCESS;
  }
  if (CUresult r = legacy_stream_check_locked(s); r != CUDA_SUCCESS) return r;
  if (CUresult r = reserve_exec_memory_locked(e); r != CUDA_SUCCESS) return r;
  for (uint64_t b : e->kernel_blocks) issue_work_locked(s, b * ns_per_block());
  return CUDA_SUCCESS;
}

CUresult graph_mem_attr(CUdevice dev, CUgraphMem_attribute attr, void* value, bool set) {
  if (CUresult r = check_init(); r != CUDA_SUCCESS) return r;
  if (value == nullptr) return CUDA_ERROR_INVALID_VALUE;
  if (CUresult r = check_device(dev); r != CUDA_SUCCESS) return r;
  ProcLock lk;
  GraphMemPool& g = proc().graph_mem[dev];
  auto* v = static_cast<cuuint64_t*>(value);
  if (set) {  // only the high-water marks can be reset (to 0 = the current value)
    if (*v != 0) return CUDA_ERROR_INVALID_VALUE;
    switch (attr) {
      case CU_GRAPH_MEM_ATTR_USED_MEM_HIGH:
        g.used_high = g.used;
        return CUDA_SUCCESS;
      case CU_GRAPH_MEM_ATTR_RESERVED_MEM_HIGH:
        g.reserved_high = g.reserved;
        return CUDA_SUCCESS;
      default:
        return CUDA_ERROR_INVALID_VALUE;
    }
  }
  switch (attr) {
    case CU_GRAPH_MEM_ATTR_USED_MEM_CURRENT:
      *v = g.used;
      return CUDA_SUCCESS;
    case CU_GRAPH_MEM_ATTR_USED_MEM_HIGH:
      *v = g.used_high;
      return CUDA_SUCCESS;
    case CU_GRAPH_MEM_ATTR_RESERVED_MEM_CURRENT:
      *v = g.reserved;
      return CUDA_SUCCESS;
    case CU_GRAPH_MEM_ATTR_RESERVED_MEM_HIGH:
      *v = g.reserved_high;
      return CUDA_SUCCESS;
    default:
      return CUDA_ERROR_INVALID_VALUE;
  }
}

}  // namespace
}  // namespace xpu_fake

using namespace xpu_fake;

extern "C" {

XPU_FAKE_EXPORT CUresult cuGraphCreate(CUgraph* phGraph, unsigned int flags) {
  XPU_FAKE_API(cuGraphCreate, {
    if (CUresult r = check_init(); r != CUDA_SUCCESS) return r;
    if (phGraph == nullptr || flags != 0) return CUDA_ERROR_INVALID_VALUE;
    ProcLock lk;
    auto* g = new CUgraph_st;
    proc().graphs.insert(g);
    *phGraph = g;
    return CUDA_SUCCESS;
  });
}

XPU_FAKE_EXPORT CUresult cuGraphDestroy(CUgraph hGraph) {
  XPU_FAKE_API(cuGraphDestroy, {
    if (CUresult r = check_init(); r != CUDA_SUCCESS) return r;
    ProcLock lk;
    if (hGraph == nullptr || proc().graphs.erase(hGraph) == 0) return CUDA_ERROR_INVALID_VALUE;
    delete hGraph;
    return CUDA_SUCCESS;
  });
}

XPU_FAKE_EXPORT CUresult cuGraphGetNodes(CUgraph hGraph, CUgraphNode* nodes, size_t* numNodes) {
  XPU_FAKE_API(cuGraphGetNodes, {
    if (CUresult r = check_init(); r != CUDA_SUCCESS) return r;
    if (numNodes == nullptr) return CUDA_ERROR_INVALID_VALUE;
    ProcLock lk;
    if (hGraph == nullptr || proc().graphs.count(hGraph) == 0) return CUDA_ERROR_INVALID_VALUE;
    const size_t n = hGraph->nodes.size();
    if (nodes != nullptr) {
      for (size_t i = 0; i < std::min(n, *numNodes); ++i) nodes[i] = hGraph->nodes[i].get();
    }
    *numNodes = n;
    return CUDA_SUCCESS;
  });
}

XPU_FAKE_EXPORT CUresult cuGraphAddEmptyNode(CUgraphNode* phGraphNode, CUgraph hGraph,
                                             const CUgraphNode* dependencies,
                                             size_t numDependencies) {
  XPU_FAKE_API(cuGraphAddEmptyNode, {
    (void)dependencies;
    (void)numDependencies;
    return add_node(phGraphNode, hGraph, CUgraphNode_st{NodeKind::kEmpty, 0, 0, 0});
  });
}

XPU_FAKE_EXPORT CUresult cuGraphAddKernelNode_v2(CUgraphNode* phGraphNode, CUgraph hGraph,
                                                 const CUgraphNode* dependencies,
                                                 size_t numDependencies,
                                                 const CUDA_KERNEL_NODE_PARAMS* nodeParams) {
  XPU_FAKE_API(cuGraphAddKernelNode_v2, {
    (void)dependencies;
    (void)numDependencies;
    if (nodeParams == nullptr || nodeParams->gridDimX == 0) return CUDA_ERROR_INVALID_VALUE;
    return add_node(phGraphNode, hGraph,
                    CUgraphNode_st{NodeKind::kKernel, nodeParams->gridDimX, 0, 0});
  });
}

XPU_FAKE_EXPORT CUresult cuGraphAddMemAllocNode(CUgraphNode* phGraphNode, CUgraph hGraph,
                                                const CUgraphNode* dependencies,
                                                size_t numDependencies,
                                                CUDA_MEM_ALLOC_NODE_PARAMS* nodeParams) {
  XPU_FAKE_API(cuGraphAddMemAllocNode, {
    (void)dependencies;
    (void)numDependencies;
    if (CUresult r = check_init(); r != CUDA_SUCCESS) return r;
    if (nodeParams == nullptr || nodeParams->bytesize == 0) return CUDA_ERROR_INVALID_VALUE;
    CUdeviceptr addr = 0;
    int dev = nodeParams->poolProps.location.id;
    if (check_device(dev) != CUDA_SUCCESS) return CUDA_ERROR_INVALID_VALUE;
    {
      ProcLock lk;
      addr = new_device_address_locked(nodeParams->bytesize);
      proc().allocs[addr] =
          Alloc{nodeParams->bytesize, 0, dev, nullptr, AllocKind::kGraph, nullptr};
    }
    CUresult r = add_node(phGraphNode, hGraph,
                          CUgraphNode_st{NodeKind::kMemAlloc, 0, nodeParams->bytesize, addr});
    if (r == CUDA_SUCCESS) nodeParams->dptr = addr;
    return r;
  });
}

XPU_FAKE_EXPORT CUresult cuGraphAddMemFreeNode(CUgraphNode* phGraphNode, CUgraph hGraph,
                                               const CUgraphNode* dependencies,
                                               size_t numDependencies, CUdeviceptr dptr) {
  XPU_FAKE_API(cuGraphAddMemFreeNode, {
    (void)dependencies;
    (void)numDependencies;
    return add_node(phGraphNode, hGraph, CUgraphNode_st{NodeKind::kMemFree, 0, 0, dptr});
  });
}

XPU_FAKE_EXPORT CUresult cuGraphInstantiateWithFlags(CUgraphExec* phGraphExec, CUgraph hGraph,
                                                     unsigned long long flags) {
  XPU_FAKE_API(cuGraphInstantiateWithFlags, {
    (void)flags;
    return instantiate(phGraphExec, hGraph);
  });
}

XPU_FAKE_EXPORT CUresult cuGraphInstantiate_v2(CUgraphExec* phGraphExec, CUgraph hGraph,
                                               CUgraphNode* phErrorNode, char* logBuffer,
                                               size_t bufferSize) {
  XPU_FAKE_API(cuGraphInstantiate_v2, {
    if (phErrorNode != nullptr) *phErrorNode = nullptr;
    if (logBuffer != nullptr && bufferSize > 0) logBuffer[0] = '\0';
    return instantiate(phGraphExec, hGraph);
  });
}

XPU_FAKE_EXPORT CUresult cuGraphInstantiate(CUgraphExec* phGraphExec, CUgraph hGraph,
                                            CUgraphNode* phErrorNode, char* logBuffer,
                                            size_t bufferSize) {
  XPU_FAKE_API(cuGraphInstantiate, {
    if (phErrorNode != nullptr) *phErrorNode = nullptr;
    if (logBuffer != nullptr && bufferSize > 0) logBuffer[0] = '\0';
    return instantiate(phGraphExec, hGraph);
  });
}

XPU_FAKE_EXPORT CUresult cuGraphInstantiateWithParams(CUgraphExec* phGraphExec, CUgraph hGraph,
                                                      CUDA_GRAPH_INSTANTIATE_PARAMS* params) {
  XPU_FAKE_API(cuGraphInstantiateWithParams, {
    if (params == nullptr) return CUDA_ERROR_INVALID_VALUE;
    CUresult r = instantiate(phGraphExec, hGraph);
    params->hErrNode_out = nullptr;
    params->result_out =
        r == CUDA_SUCCESS ? CUDA_GRAPH_INSTANTIATE_SUCCESS : CUDA_GRAPH_INSTANTIATE_ERROR;
    if (r == CUDA_SUCCESS && (params->flags & CUDA_GRAPH_INSTANTIATE_FLAG_UPLOAD) != 0) {
      r = upload(*phGraphExec, params->hUploadStream, false);
    }
    return r;
  });
}

XPU_FAKE_EXPORT CUresult cuGraphInstantiateWithParams_ptsz(CUgraphExec* phGraphExec, CUgraph hGraph,
                                                           CUDA_GRAPH_INSTANTIATE_PARAMS* params) {
  XPU_FAKE_API(cuGraphInstantiateWithParams_ptsz, {
    if (params == nullptr) return CUDA_ERROR_INVALID_VALUE;
    CUresult r = instantiate(phGraphExec, hGraph);
    params->hErrNode_out = nullptr;
    params->result_out =
        r == CUDA_SUCCESS ? CUDA_GRAPH_INSTANTIATE_SUCCESS : CUDA_GRAPH_INSTANTIATE_ERROR;
    if (r == CUDA_SUCCESS && (params->flags & CUDA_GRAPH_INSTANTIATE_FLAG_UPLOAD) != 0) {
      r = upload(*phGraphExec, params->hUploadStream, true);
    }
    return r;
  });
}

XPU_FAKE_EXPORT CUresult cuGraphUpload(CUgraphExec hGraphExec, CUstream hStream) {
  XPU_FAKE_API(cuGraphUpload, return upload(hGraphExec, hStream, false););
}
XPU_FAKE_EXPORT CUresult cuGraphUpload_ptsz(CUgraphExec hGraphExec, CUstream hStream) {
  XPU_FAKE_API(cuGraphUpload_ptsz, return upload(hGraphExec, hStream, true););
}
XPU_FAKE_EXPORT CUresult cuGraphLaunch(CUgraphExec hGraphExec, CUstream hStream) {
  XPU_FAKE_API(cuGraphLaunch, return graph_launch(hGraphExec, hStream, false););
}
XPU_FAKE_EXPORT CUresult cuGraphLaunch_ptsz(CUgraphExec hGraphExec, CUstream hStream) {
  XPU_FAKE_API(cuGraphLaunch_ptsz, return graph_launch(hGraphExec, hStream, true););
}

XPU_FAKE_EXPORT CUresult cuGraphExecDestroy(CUgraphExec hGraphExec) {
  XPU_FAKE_API(cuGraphExecDestroy, {
    if (CUresult r = check_init(); r != CUDA_SUCCESS) return r;
    ProcLock lk;
    if (hGraphExec == nullptr || proc().execs.erase(hGraphExec) == 0) {
      return CUDA_ERROR_INVALID_VALUE;
    }
    if (hGraphExec->mem_reserved) {
      graph_mem_release_locked(hGraphExec->device, hGraphExec->alloc_bytes);
    }
    delete hGraphExec;
    return CUDA_SUCCESS;
  });
}

XPU_FAKE_EXPORT CUresult cuDeviceGraphMemTrim(CUdevice device) {
  XPU_FAKE_API(cuDeviceGraphMemTrim, {
    if (CUresult r = check_init(); r != CUDA_SUCCESS) return r;
    if (CUresult r = check_device(device); r != CUDA_SUCCESS) return r;
    ProcLock lk;
    GraphMemPool& g = proc().graph_mem[device];
    const uint64_t keep = round_up(g.used, kGranularity);
    if (g.reserved > keep) {
      uncharge(device, g.reserved - keep);
      g.reserved = keep;
    }
    return CUDA_SUCCESS;
  });
}

XPU_FAKE_EXPORT CUresult cuDeviceGetGraphMemAttribute(CUdevice device, CUgraphMem_attribute attr,
                                                      void* value) {
  XPU_FAKE_API(cuDeviceGetGraphMemAttribute, return graph_mem_attr(device, attr, value, false););
}
XPU_FAKE_EXPORT CUresult cuDeviceSetGraphMemAttribute(CUdevice device, CUgraphMem_attribute attr,
                                                      void* value) {
  XPU_FAKE_API(cuDeviceSetGraphMemAttribute, return graph_mem_attr(device, attr, value, true););
}

}  // extern "C"
