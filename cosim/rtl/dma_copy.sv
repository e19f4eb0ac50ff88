// A small DMA copy engine: APB control registers, an AXI4 master (64-bit data,
// 64-bit addresses) that copies LEN bytes from SRC to DST in INCR bursts.
// Each burst is read whole into a buffer, then written back; bursts stop at
// 4 KiB boundaries (of source and destination) and at MAXLEN+1 beats. Beats
// are 2^SIZE bytes (narrow transfers when SIZE < 3); SRC and DST may be
// unaligned but must agree modulo 8 (same byte lanes), else the copy fails.
//
// Register map (APB, 32-bit):
//   0x00 ID      RO  0x434f444d ("CODM")
//   0x04 SRC_LO  0x08 SRC_HI  0x0c DST_LO  0x10 DST_HI  RW
//   0x14 LEN     RW  bytes to copy
//   0x18 CTRL    RW  bit0 start (write 1; reads 0), bit1 irq enable
//   0x1c STATUS  bit0 busy (RO), bit1 done (W1C), bit2 error (W1C)
//   0x20 CONFIG  RW  [2:0] SIZE (log2 beat bytes, default 3), [15:8] MAXLEN (beats-1, default 15)
//   0x24 DONE    RO  bytes copied so far
//   other        PSLVERR
module dma_copy (
    input  logic        PCLK,
    input  logic        PRESETn,
    input  logic        PSEL,
    input  logic        PENABLE,
    input  logic        PWRITE,
    input  logic [11:0] PADDR,
    input  logic [31:0] PWDATA,
    input  logic [3:0]  PSTRB,
    output logic [31:0] PRDATA,
    output logic        PREADY,
    output logic        PSLVERR,
    output logic        irq,
    // AXI4 master
    output logic        m_axi_awvalid,
    input  logic        m_axi_awready,
    output logic [63:0] m_axi_awaddr,
    output logic [7:0]  m_axi_awlen,
    output logic [2:0]  m_axi_awsize,
    output logic [1:0]  m_axi_awburst,
    output logic        m_axi_wvalid,
    input  logic        m_axi_wready,
    output logic [63:0] m_axi_wdata,
    output logic [7:0]  m_axi_wstrb,
    output logic        m_axi_wlast,
    input  logic        m_axi_bvalid,
    output logic        m_axi_bready,
    input  logic [1:0]  m_axi_bresp,
    output logic        m_axi_arvalid,
    input  logic        m_axi_arready,
    output logic [63:0] m_axi_araddr,
    output logic [7:0]  m_axi_arlen,
    output logic [2:0]  m_axi_arsize,
    output logic [1:0]  m_axi_arburst,
    input  logic        m_axi_rvalid,
    output logic        m_axi_rready,
    input  logic [63:0] m_axi_rdata,
    input  logic [1:0]  m_axi_rresp,
    input  logic        m_axi_rlast
);
  // ---- registers ----
  logic [63:0] src, dst;
  logic [31:0] len, done_bytes;
  logic        irq_en, st_done, st_err;
  logic [2:0]  cfg_size;
  logic [7:0]  cfg_maxlen;
  logic        start;

  typedef enum logic [2:0] {IDLE, CALC, AR, R, AW, W, B} state_t;
  state_t state;
  wire busy = state != IDLE;

  assign irq = (st_done | st_err) & irq_en;
  assign PREADY = 1'b1;
  wire apb_access = PSEL && PENABLE;
  wire [5:0] off = PADDR[5:0];
  wire in_map = PADDR[11:6] == 0 && off <= 6'h24 && off[1:0] == 0;
  assign PSLVERR = apb_access && !in_map;

  always_comb begin
    case (off)
      6'h00: PRDATA = 32'h434f444d;
      6'h04: PRDATA = src[31:0];
      6'h08: PRDATA = src[63:32];
      6'h0c: PRDATA = dst[31:0];
      6'h10: PRDATA = dst[63:32];
      6'h14: PRDATA = len;
      6'h18: PRDATA = {30'd0, irq_en, 1'b0};
      6'h1c: PRDATA = {29'd0, st_err, st_done, busy};
      6'h20: PRDATA = {16'd0, cfg_maxlen, 5'd0, cfg_size};
      6'h24: PRDATA = done_bytes;
      default: PRDATA = 32'd0;
    endcase
    if (PADDR[11:6] != 0) PRDATA = 32'd0;
  end

  // ---- engine ----
  logic [63:0] cur_src, cur_dst;
  logic [31:0] remaining;
  logic [12:0] bytes;       // this burst
  logic [8:0]  beats, beat; // beats in this burst, current beat
  logic        burst_err;
  logic [63:0] buffer [0:255];

  wire [3:0]  sz = 4'd1 << cfg_size;
  wire [63:0] szmask = {60'd0, sz - 4'd1};
  wire [12:0] burst_off = 13'(cur_src & szmask);
  wire [12:0] max_bytes = 13'((({5'd0, cfg_maxlen} + 13'd1) << cfg_size)) - burst_off;
  wire [12:0] to4k_s = 13'd4096 - {1'b0, cur_src[11:0]};
  wire [12:0] to4k_d = 13'd4096 - {1'b0, cur_dst[11:0]};
  logic [12:0] calc_bytes;
  always_comb begin
    calc_bytes = max_bytes;
    if (to4k_s < calc_bytes) calc_bytes = to4k_s;
    if (to4k_d < calc_bytes) calc_bytes = to4k_d;
    if ({19'd0, calc_bytes} > remaining) calc_bytes = remaining[12:0];
  end
  wire [13:0] calc_beats = 14'(({1'b0, burst_off} + {1'b0, calc_bytes} + {10'd0, sz} - 14'd1) >> cfg_size);

  // Write strobes of the current beat: the lanes of its container that fall
  // inside [cur_dst, cur_dst + bytes).
  wire [63:0] container = (cur_dst & ~szmask) + (64'(beat) << cfg_size);
  wire [63:0] dst_end = cur_dst + {51'd0, bytes};
  always_comb begin
    for (int j = 0; j < 8; j++) begin
      logic [63:0] a;
      a = {container[63:3], 3'b000} + 64'(j);
      m_axi_wstrb[j] = (3'(j) >= container[2:0]) && ({1'b0, 3'(j)} < {1'b0, container[2:0]} + sz) &&
                       (a >= cur_dst) && (a < dst_end);
    end
  end

  assign m_axi_arvalid = state == AR;
  assign m_axi_araddr = cur_src;
  assign m_axi_arlen = 8'(beats - 9'd1);
  assign m_axi_arsize = cfg_size;
  assign m_axi_arburst = 2'b01;
  assign m_axi_rready = state == R;
  assign m_axi_awvalid = state == AW;
  assign m_axi_awaddr = cur_dst;
  assign m_axi_awlen = 8'(beats - 9'd1);
  assign m_axi_awsize = cfg_size;
  assign m_axi_awburst = 2'b01;
  assign m_axi_wvalid = state == W;
  assign m_axi_wdata = buffer[beat[7:0]];
  assign m_axi_wlast = beat == beats - 9'd1;
  assign m_axi_bready = state == B;
  wire unused = m_axi_rlast;

  always_ff @(posedge PCLK or negedge PRESETn) begin
    if (!PRESETn) begin
      src <= 0; dst <= 0; len <= 0; done_bytes <= 0; irq_en <= 0; st_done <= 0; st_err <= 0;
      cfg_size <= 3; cfg_maxlen <= 15; start <= 0;
      state <= IDLE; cur_src <= 0; cur_dst <= 0; remaining <= 0; bytes <= 0; beats <= 0; beat <= 0;
      burst_err <= 0;
    end else begin
      start <= 0;
      if (apb_access && PWRITE && in_map) begin
        case (off)
          6'h04: src[31:0] <= PWDATA;
          6'h08: src[63:32] <= PWDATA;
          6'h0c: dst[31:0] <= PWDATA;
          6'h10: dst[63:32] <= PWDATA;
          6'h14: len <= PWDATA;
          6'h18: begin irq_en <= PWDATA[1]; start <= PWDATA[0]; end
          6'h1c: begin
            if (PWDATA[1]) st_done <= 0;
            if (PWDATA[2]) st_err <= 0;
          end
          6'h20: begin cfg_size <= PWDATA[2:0] > 3 ? 3'd3 : PWDATA[2:0]; cfg_maxlen <= PWDATA[15:8]; end
          default: ;
        endcase
      end
      case (state)
        IDLE: if (start) begin
          cur_src <= src; cur_dst <= dst; remaining <= len; done_bytes <= 0; burst_err <= 0;
          if (len == 0) st_done <= 1;
          else if (src[2:0] != dst[2:0]) st_err <= 1;
          else state <= CALC;
        end
        CALC: begin
          bytes <= calc_bytes; beats <= calc_beats[8:0]; beat <= 0; state <= AR;
        end
        AR: if (m_axi_arready) state <= R;
        R: if (m_axi_rvalid) begin
          buffer[beat[7:0]] <= m_axi_rdata;
          if (m_axi_rresp[1]) burst_err <= 1;
          if (beat == beats - 9'd1) begin beat <= 0; state <= AW; end
          else beat <= beat + 1;
        end
        AW: if (m_axi_awready) state <= W;
        W: if (m_axi_wready) begin
          if (beat == beats - 9'd1) state <= B;
          else beat <= beat + 1;
        end
        B: if (m_axi_bvalid) begin
          if (burst_err || m_axi_bresp[1]) begin
            st_err <= 1; state <= IDLE;
          end else begin
            cur_src <= cur_src + {51'd0, bytes};
            cur_dst <= cur_dst + {51'd0, bytes};
            remaining <= remaining - {19'd0, bytes};
            done_bytes <= done_bytes + {19'd0, bytes};
            if (remaining == {19'd0, bytes}) begin st_done <= 1; state <= IDLE; end
            else state <= CALC;
          end
        end
        default: state <= IDLE;
      endcase
    end
  end
endmodule
