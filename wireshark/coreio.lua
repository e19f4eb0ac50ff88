-- Wireshark dissector for the CoreIO protocol (external MMIO device models for
-- VMs), as specified in PROTOCOL.md: 64-byte frames of eight little-endian
-- 64-bit words on two TCP connections per client (main and DMA).
--
--   wireshark -X lua_script:coreio.lua run.pcap
--   tshark -X lua_script:coreio.lua -r run.pcap -2 -Y coreio -T fields -e coreio.op_name -e coreio.addr
--   (or copy the file into ~/.local/lib/wireshark/plugins/)
--
-- Preferences: coreio.tcp_port (the VM's port, 4800), coreio.stats (print the
-- per-op statistics at the end of a tshark run). Menu: Statistics > CoreIO.
-- Works with Wireshark 3.x/4.x (Lua 5.2 .. 5.4): no bit library is needed.

local coreio = Proto("coreio", "CoreIO")

local BLOCK = 64

local op_names = {
    [0x00] = "PING", [0x01] = "READ", [0x02] = "WRITE", [0x03] = "READP", [0x04] = "WRITEP",
    [0x05] = "WRITEA", [0x06] = "WRITEAP", [0x41] = "IRQ_UPDATE", [0xF0] = "RGN_CLAIM", [0xFF] = "RESET",
}
local OP_PING, OP_READ, OP_WRITE, OP_READP, OP_WRITEP, OP_WRITEA, OP_WRITEAP = 0, 1, 2, 3, 4, 5, 6
local OP_IRQ, OP_CLAIM, OP_RESET = 0x41, 0xF0, 0xFF

local function is_pair(op) return op == OP_READP or op == OP_WRITEP or op == OP_WRITEAP end
local function is_access(op) return op >= OP_READ and op <= OP_WRITEAP end
local function wants_reply(op)
    return op == OP_PING or op == OP_READ or op == OP_READP or op == OP_WRITEA or op == OP_WRITEAP
end

-- Fields: names follow PROTOCOL.md. w0 and w1 are read as their low and high
-- 32-bit halves (little endian), so the masks below are the protocol's bits.
local F = {
    rid = ProtoField.uint32("coreio.rid", "Range id (rid)", base.DEC, nil, 0x000000ff),
    mid = ProtoField.uint32("coreio.mid", "IOMMU id (mid)", base.DEC, nil, 0x000000ff),
    extra_blocks = ProtoField.uint32("coreio.extra_blocks", "Extra 64-byte blocks", base.DEC, nil, 0x0000ff00),
    reserved = ProtoField.uint32("coreio.reserved", "Reserved (zero)", base.HEX, nil, 0x3fff0000),
    error = ProtoField.bool("coreio.error", "Error", 32, nil, 0x40000000,
        "set by the responder: MMIO handler failed (bus error) or DMA fault"),
    client_originated = ProtoField.bool("coreio.client_originated", "Client-originated", 32, nil, 0x80000000),
    tag = ProtoField.uint32("coreio.tag", "Tag", base.HEX, nil, nil, "VM request tag, or the client's DMA packet id"),
    op = ProtoField.uint32("coreio.op", "Opcode", base.HEX, op_names, 0x000000ff),
    op_name = ProtoField.string("coreio.op_name", "Opcode name"),
    size = ProtoField.uint32("coreio.size", "Size", base.DEC, nil, 0x003f0000,
        "access length in bytes (pair ops: each element)"),
    sid = ProtoField.uint32("coreio.sid", "IOMMU region id (sid)", base.DEC, nil, 0x0f000000),
    flags = ProtoField.uint32("coreio.flags", "Access flags", base.HEX, nil, 0xf0000000),
    flag_ifetch = ProtoField.bool("coreio.flags.ifetch", "IFETCH", 32, nil, 0x20000000),
    flag_priv = ProtoField.bool("coreio.flags.priv", "PRIV", 32, nil, 0x40000000),
    flag_secure = ProtoField.bool("coreio.flags.secure", "SECURE", 32, nil, 0x80000000),
    mask = ProtoField.uint32("coreio.mask", "Byte-enable mask", base.HEX),
    addr = ProtoField.uint64("coreio.addr", "Address", base.HEX),
    data = ProtoField.bytes("coreio.data", "Data"),
    value = ProtoField.uint64("coreio.value", "Value (little endian)", base.HEX),
    addr2 = ProtoField.uint64("coreio.addr2", "Pair element 2 address", base.HEX),
    data2 = ProtoField.bytes("coreio.data2", "Pair element 2 data"),
    value2 = ProtoField.uint64("coreio.value2", "Pair element 2 value", base.HEX),
    irq_line = ProtoField.uint64("coreio.irq.line", "IRQ line"),
    irq_level = ProtoField.uint64("coreio.irq.level", "IRQ level"),
    extra = ProtoField.bytes("coreio.extra", "Extra blocks"),
    kind = ProtoField.string("coreio.kind", "Kind"),
    request_in = ProtoField.framenum("coreio.request_in", "Request in", base.NONE, frametype.REQUEST),
    reply_in = ProtoField.framenum("coreio.reply_in", "Reply in", base.NONE, frametype.RESPONSE),
    time = ProtoField.relative_time("coreio.time", "Time since request"),
}
local field_list = {}
for _, f in pairs(F) do field_list[#field_list + 1] = f end
coreio.fields = field_list

local E = {
    malformed = ProtoExpert.new("coreio.malformed", "Malformed CoreIO frame", expert.group.MALFORMED,
        expert.severity.ERROR),
    error_reply = ProtoExpert.new("coreio.error_reply", "Error reply (bus error / DMA fault)",
        expert.group.RESPONSE_CODE, expert.severity.WARN),
    no_request = ProtoExpert.new("coreio.no_request", "Reply without a request in the capture",
        expert.group.SEQUENCE, expert.severity.NOTE),
    reserved = ProtoExpert.new("coreio.reserved_set", "Reserved bits w0[29:16] are not zero",
        expert.group.PROTOCOL, expert.severity.NOTE),
    client_long = ProtoExpert.new("coreio.client_long", "Client frame longer than 64 bytes",
        expert.group.PROTOCOL, expert.severity.WARN),
}
coreio.experts = { E.malformed, E.error_reply, E.no_request, E.reserved, E.client_long }

coreio.prefs.tcp_port = Pref.uint("TCP port", 4800, "TCP port of the VM (both connections of every client)")
coreio.prefs.stats = Pref.bool("Print statistics", false, "tshark: print per-op statistics at the end")


-- Request/reply state of the capture, rebuilt on every (re)dissection.
local pending, links = {}, {}
function coreio.init()
    pending, links = {}, {}
end

-- Integer helpers without a bit library.
-- (math.floor of the result: an integer, not a float, under Lua 5.3+.)
local function bits(v, lo, width) return math.floor(math.floor(v / 2 ^ lo) % 2 ^ width) end

-- Why the frame breaks PROTOCOL.md, or nil (mirrors coreio::Frame::validate).
local function frame_problem(op, size, rid, tvb)
    if not op_names[op] then return string.format("unknown opcode 0x%02x", op) end
    if op == OP_READ or op == OP_WRITE or op == OP_WRITEA then
        if size == 0 or size > 32 then return string.format("size %d not in 1..32", size) end
    elseif is_pair(op) then
        if size == 0 or size > 16 then return string.format("pair element size %d not in 1..16", size) end
    elseif op == OP_IRQ or op == OP_CLAIM then
        if rid >= 8 then return string.format("rid %d >= 8", rid) end
        if op == OP_IRQ then
            local line, level = tvb(16, 8):le_uint64(), tvb(24, 8):le_uint64()
            if line >= UInt64(8) then return "IRQ line " .. tostring(line) .. " > 7" end
            if level > UInt64(1) then return "IRQ level " .. tostring(level) .. " not 0/1" end
        end
    end
    return nil
end

-- Data of an access: a single block of `size` bytes, or two pair elements.
local function add_data(tree, tvb, op, size)
    if is_pair(op) then
        local n = math.min(size, 16)
        local second = 24 + (1 + math.floor(size / 8)) * 8
        tree:add(F.data, tvb(24, n))
        if n <= 8 then tree:add_le(F.value, tvb(24, n)) end
        tree:add(F.addr2, tvb(16, 8):le_uint64() + size):set_generated()
        tree:add(F.data2, tvb(second, n))
        if n <= 8 then tree:add_le(F.value2, tvb(second, n)) end
    else
        local n = math.min(size, 32)
        tree:add(F.data, tvb(24, n))
        if n <= 8 then tree:add_le(F.value, tvb(24, n)) end
    end
end

-- Links a request and its reply (same w0 tag/rid, w1, w2 on the same connection).
local function link(pinfo, tree, tvb, is_request, op, key)
    local here = pinfo.number .. "/" .. key
    if not pinfo.visited then
        local now = pinfo.rel_ts  -- seconds since the first packet: ns-exact for days
        if is_request then
            if wants_reply(op) then pending[key] = { frame = pinfo.number, time = now, key = here } end
        else
            local req = pending[key]
            if req then
                pending[key] = nil
                local d = now - req.time
                local secs = math.floor(d)
                links[here] = { request = req.frame, delta = NSTime(secs, math.floor((d - secs) * 1e9 + 0.5)) }
                links[req.key] = { reply = pinfo.number }
            end
        end
    end
    local l = links[here]
    if is_request then
        if l and l.reply then tree:add(F.reply_in, l.reply):set_generated() end
    elseif l then
        tree:add(F.request_in, l.request):set_generated()
        tree:add(F.time, l.delta):set_generated()
    else
        tree:add_proto_expert_info(E.no_request)
    end
end

local function kind_of(op, from_vm, client_originated)
    local dma = client_originated and (op == OP_READ or op == OP_WRITEA)
    local request = from_vm ~= client_originated
    if op == OP_PING then return request and "ping" or "ping echo", request end
    if op == OP_IRQ then return "IRQ update", true end
    if op == OP_CLAIM then return "claim", true end
    if op == OP_RESET then return "reset", true end
    if not is_access(op) then return "unknown", request end
    local what = dma and "DMA" or "MMIO"
    if not request then return what .. " reply", false end
    if not wants_reply(op) and not dma then return what .. " posted write", true end
    return what .. " request", true
end

-- The Info column lists the frames of a packet separated by " | ".
local info_empty = true
local function add_info(pinfo, text)
    pinfo.cols.info:append((info_empty and "" or " | ") .. text)
    info_empty = false
end

-- One whole frame (its declared length) in `tvb`.
local function dissect_frame(tvb, pinfo, tree)
    local w0 = tvb(0, 4):le_uint()
    local w1 = tvb(8, 4):le_uint()
    local rid, extra, reserved = bits(w0, 0, 8), bits(w0, 8, 8), bits(w0, 16, 14)
    local err, client_originated = bits(w0, 30, 1) == 1, bits(w0, 31, 1) == 1
    local op, size = bits(w1, 0, 8), bits(w1, 16, 6)
    local vm_port = pinfo.match_uint ~= 0 and pinfo.match_uint or coreio.prefs.tcp_port
    local from_vm = pinfo.src_port == vm_port
    local dma = client_originated and (op == OP_READ or op == OP_WRITEA)
    local kind, is_request = kind_of(op, from_vm, client_originated)
    local name = op_names[op] or string.format("0x%02x", op)

    local t = tree:add(coreio, tvb(), string.format("CoreIO %s %s", kind, name))
    t:add(F.kind, kind):set_generated()
    local w0t = t:add(tvb(0, 8), "w0")
    w0t:add_le(dma and F.mid or F.rid, tvb(0, 4))
    w0t:add_le(F.extra_blocks, tvb(0, 4))
    local res = w0t:add_le(F.reserved, tvb(0, 4))
    if reserved ~= 0 then res:add_proto_expert_info(E.reserved) end
    w0t:add_le(F.error, tvb(0, 4))
    w0t:add_le(F.client_originated, tvb(0, 4))
    w0t:add_le(F.tag, tvb(4, 4))
    local w1t = t:add(tvb(8, 8), "w1")
    w1t:add_le(F.op, tvb(8, 4))
    t:add(F.op_name, name):set_generated()

    local problem = frame_problem(op, size, rid, tvb)
    if problem then
        t:add_tvb_expert_info(E.malformed, tvb(0, BLOCK), problem)
        add_info(pinfo, string.format("[malformed: %s]", problem))
        return
    end

    local info
    if is_access(op) then
        w1t:add_le(F.size, tvb(8, 4))
        w1t:add_le(F.sid, tvb(8, 4))
        local fl = w1t:add_le(F.flags, tvb(8, 4))
        fl:add_le(F.flag_ifetch, tvb(8, 4))
        fl:add_le(F.flag_priv, tvb(8, 4))
        fl:add_le(F.flag_secure, tvb(8, 4))
        w1t:add_le(F.mask, tvb(12, 4))
        t:add_le(F.addr, tvb(16, 8))
        add_data(t, tvb, op, size)
        info = string.format("%s %s %s=%d addr=0x%s size=%d", kind, name, dma and "mid" or "rid", rid,
            tvb(16, 8):le_uint64():tohex():gsub("^0+(.)", "%1"), size)
    elseif op == OP_IRQ then
        t:add_le(F.irq_line, tvb(16, 8))
        t:add_le(F.irq_level, tvb(24, 8))
        info = string.format("IRQ_UPDATE rid=%d line=%s level=%s", rid, tostring(tvb(16, 8):le_uint64()),
            tostring(tvb(24, 8):le_uint64()))
    else
        if op == OP_CLAIM then info = "RGN_CLAIM rid=" .. rid
        elseif op == OP_PING then info = string.format("%s tag=0x%x", kind:upper(), tvb(4, 4):le_uint())
        else info = name end
    end
    if err then
        info = info .. " ERROR"
        t:add_proto_expert_info(E.error_reply)
    end
    if extra > 0 then
        t:add(F.extra, tvb(BLOCK, extra * BLOCK))
        if not from_vm then t:add_proto_expert_info(E.client_long) end
    end

    if wants_reply(op) or not is_request then
        -- The connection by its client end (field extractors such as tcp.stream
        -- are empty in tshark's first pass when no tree is built).
        local conn = from_vm and (tostring(pinfo.dst) .. ":" .. pinfo.dst_port)
            or (tostring(pinfo.src) .. ":" .. pinfo.src_port)
        local key = string.format("%s/%d/%s/%08x/%s", conn, rid,
            client_originated and "c" or "v", tvb(4, 4):le_uint(), tostring(tvb(8, 16):bytes()))
        link(pinfo, t, tvb, is_request, op, key)
    end
    add_info(pinfo, info)
end

-- Length of the frame starting at `offset` (only its first two bytes are needed).
local function frame_length(tvb, pinfo, offset)
    return (tvb(offset + 1, 1):uint() + 1) * BLOCK
end

local function dissect_pdu(tvb, pinfo, tree)
    local ok, e = pcall(dissect_frame, tvb, pinfo, tree)
    if not ok then
        tree:add_proto_expert_info(E.malformed, "cannot decode: " .. tostring(e))
    end
    return tvb:len()
end

function coreio.dissector(tvb, pinfo, tree)
    pinfo.cols.protocol = "CoreIO"
    pinfo.cols.info = ""
    info_empty = true
    dissect_tcp_pdus(tvb, tree, 2, frame_length, dissect_pdu)
    return tvb:len()
end

-- The port preference: move the registration when it changes.
local registered_port
local function register_port()
    local tcp = DissectorTable.get("tcp.port")
    if registered_port then tcp:remove(registered_port, coreio) end
    registered_port = coreio.prefs.tcp_port
    tcp:add(registered_port, coreio)
end
function coreio.prefs_changed() register_port() end
register_port()

-- ---- statistics: frames per op and kind, errors, latency ---------------------

local f_kind, f_op_name, f_err, f_time = Field.new("coreio.kind"), Field.new("coreio.op_name"),
    Field.new("coreio.error"), Field.new("coreio.time")

local Stats = {}
Stats.__index = Stats
function Stats.new() return setmetatable({ rows = {}, order = {} }, Stats) end
function Stats:add(kind, name, err, latency)
    local key = kind .. " " .. name
    local r = self.rows[key]
    if not r then
        r = { n = 0, errors = 0, lat_n = 0, lat_sum = 0, lat_max = 0 }
        self.rows[key] = r
        self.order[#self.order + 1] = key
    end
    r.n = r.n + 1
    if err then r.errors = r.errors + 1 end
    if latency then
        r.lat_n, r.lat_sum, r.lat_max = r.lat_n + 1, r.lat_sum + latency, math.max(r.lat_max, latency)
    end
end
function Stats:text()
    table.sort(self.order)
    local lines = { "CoreIO statistics", string.format("%-32s %8s %7s %12s %12s", "kind op", "frames", "errors",
        "avg lat us", "max lat us") }
    for _, key in ipairs(self.order) do
        local r = self.rows[key]
        local avg = r.lat_n > 0 and string.format("%.3f", r.lat_sum / r.lat_n * 1e6) or "-"
        local max = r.lat_n > 0 and string.format("%.3f", r.lat_max * 1e6) or "-"
        lines[#lines + 1] = string.format("%-32s %8d %7d %12s %12s", key, r.n, r.errors, avg, max)
    end
    return table.concat(lines, "\n") .. "\n"
end

-- Adds every CoreIO frame of the current packet (a packet may hold several).
local function collect(stats)
    local kinds, names, errs, times = { f_kind() }, { f_op_name() }, { f_err() }, { f_time() }
    local t = 1
    for i, k in ipairs(kinds) do
        local latency
        if k.value:find("reply") or k.value == "ping echo" then
            if times[t] then latency = times[t].value:tonumber() end
            t = t + 1
        end
        stats:add(k.value, names[i] and names[i].value or "?", errs[i] and errs[i].value, latency)
    end
end

-- tshark: with -o coreio.stats:TRUE, printed when the file is done.
local tshark_stats = Stats.new()
local tap = Listener.new("frame", "coreio")
function tap.packet() collect(tshark_stats) end
function tap.reset() tshark_stats = Stats.new() end
function tap.draw()
    if coreio.prefs.stats then io.write(tshark_stats:text()) end
end

-- Wireshark: Statistics > CoreIO.
if gui_enabled() then
    register_menu("CoreIO", function()
        local win = TextWindow.new("CoreIO statistics")
        local stats = Stats.new()
        local listener = Listener.new("frame", "coreio")
        function listener.packet() collect(stats) end
        function listener.draw() win:set(stats:text()) end
        function listener.reset() stats = Stats.new() end
        win:set_atclose(function() listener:remove() end)
        retap_packets()
    end, MENU_STAT_GENERIC)
end
