// Frames <-> trace events, in one place: the tap (recording), the replayer's
// scenario loader, its run recorder and the reproducer writer all convert
// through these, so a field added to the wire or the schema changes here only.
#pragma once

#include "coreio/frame.hpp"
#include "coreio/trace/event.hpp"

namespace coreio::trace {

/// The event of a transaction's first frame (an MMIO access from the VM or a
/// DMA chunk from the client): kind, ids, opcode, size, flags, tag, mask,
/// address, and the write data. Status is NoReply when the request expects a
/// reply (until apply_reply()), Complete for a posted write. Time, client and
/// channel are left for the caller. Precondition: exchange_of(request) is
/// Mmio or Dma.
Event transaction_event(const Frame& request);
/// transaction_event() into `ev`, which holds a default-constructed Event
/// (only the fields a transaction sets are written).
void fill_transaction(Event& ev, const Frame& request);
/// Completes a transaction event with its reply: read data, error bit, status Complete.
void apply_reply(Event& ev, const Frame& reply);
/// The event of a reply whose request was not seen (status ReplyOnly).
Event reply_only_event(const Frame& reply);
/// The event of a one-way or PING frame (Ping, Reset, Claim, Irq): only the
/// fields that kind uses are set. Precondition: exchange_of(frame) is one of those.
Event control_event(const Frame& frame);
/// The VM request an MMIO event describes (write data and mask included).
Frame request_from_event(const Event& ev);

}  // namespace coreio::trace
