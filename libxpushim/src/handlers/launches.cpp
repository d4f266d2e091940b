// The compute gate in front of every kernel and graph launch. The uncontended path is: one
// atomic load for the gates, the current device (no driver call with one visible device), and
// the arbiter's few atomic loads. No lock, no allocation, no system call.
#include "compute/gates.hpp"
#include "handlers/handlers.hpp"
#include "runtime/runtime.hpp"

namespace xpu::shim::handlers {

LaunchTicket launch_begin(CUstream stream, Stream variant) noexcept {
  Runtime& rt = Runtime::get();
  if (rt.ensure_initialised() != Mode::enforcing) return {};
  compute::Gates* gates = rt.compute();
  if (gates == nullptr) return {};
  compute::DeviceGate* gate = gates->current();
  if (gate == nullptr) return {};
  if (variant == Stream::per_thread && stream == nullptr) stream = CU_STREAM_PER_THREAD;
  const compute::Ticket t = gate->before(stream);
  return {gate, t.tracked, t.stream};
}

void launch_end(const LaunchTicket& ticket, CUresult rc) noexcept {
  if (ticket.gate == nullptr || !ticket.tracked) return;
  static_cast<compute::DeviceGate*>(ticket.gate)->after({ticket.tracked, ticket.stream}, rc);
}

}  // namespace xpu::shim::handlers
