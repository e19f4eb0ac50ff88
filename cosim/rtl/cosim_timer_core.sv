// Timer + register block shared by the APB, AXI4-Lite and Wishbone examples.
// A simple request/acknowledge port: the bus wrapper raises `req` for one
// access and holds it until `ack`; `wait_states` (register WAIT) delays ack so
// the adapters' wait-state handling is exercised.
//
// Register map (32-bit registers, byte offsets; a 64-bit bus sees two per beat):
//   0x00 ID       RO  0x434f5449 ("COTI")
//   0x04 SCRATCH0 RW  byte-writable
//   0x08 SCRATCH1 RW  byte-writable
//   0x0c CTRL     RW  bit0 enable, bit1 periodic, bit2 irq enable
//   0x10 LOAD     RW  reload value; writing it also loads COUNT
//   0x14 COUNT    RO  current count (decrements each cycle while enabled)
//   0x18 STATUS   W1C bit0 expired (the IRQ source)
//   0x1c CYCLES_LO RO cycles since reset
//   0x20 CYCLES_HI RO
//   0x24 WAIT     RW  wait states (0..15) added to every later access
//   0x28..0x3c    RAZ/WI
//   0x40..        error (slave error response)
module cosim_timer_core #(
    parameter int DW = 32,
    parameter int AW = 12
) (
    input  logic          clk,
    input  logic          rst_n,
    input  logic          req,
    input  logic          we,
    input  logic [AW-1:0] addr,
    input  logic [DW-1:0] wdata,
    input  logic [DW/8-1:0] wstrb,
    output logic          ack,
    output logic          err,
    output logic [DW-1:0] rdata,
    output logic          irq
);
  localparam int LANES = DW / 32;

  logic [31:0] scratch0, scratch1, load, count, waitq;
  logic [2:0]  ctrl;
  logic        expired;
  logic [63:0] cycles;
  logic [3:0]  wcnt;

  assign irq = expired & ctrl[2];

  function automatic logic [31:0] reg_read(input logic [5:0] off);
    case (off)
      6'h00: reg_read = 32'h434f5449;
      6'h04: reg_read = scratch0;
      6'h08: reg_read = scratch1;
      6'h0c: reg_read = {29'd0, ctrl};
      6'h10: reg_read = load;
      6'h14: reg_read = count;
      6'h18: reg_read = {31'd0, expired};
      6'h1c: reg_read = cycles[31:0];
      6'h20: reg_read = cycles[63:32];
      6'h24: reg_read = waitq;
      default: reg_read = 32'd0;
    endcase
  endfunction

  function automatic logic [31:0] merge(input logic [31:0] old, input logic [31:0] nw,
                                        input logic [3:0] strb);
    for (int b = 0; b < 4; b++) if (strb[b]) old[b*8+:8] = nw[b*8+:8];
    return old;
  endfunction

  wire in_map = (addr >> 6) == 0;
  wire [5:0] base_off = {addr[5:$clog2(DW/8)], {$clog2(DW/8){1'b0}}};
  wire fire = req && !ack && (wcnt == waitq[3:0]);

  always_comb begin
    for (int l = 0; l < LANES; l++) rdata[l*32+:32] = reg_read(base_off + 6'(l * 4));
  end

  always_ff @(posedge clk or negedge rst_n) begin
    if (!rst_n) begin
      scratch0 <= 0; scratch1 <= 0; load <= 0; count <= 0; ctrl <= 0; expired <= 0;
      cycles <= 0; waitq <= 0; wcnt <= 0; ack <= 0; err <= 0;
    end else begin
      cycles <= cycles + 1;
      ack <= 0;
      err <= 0;
      // Timer
      if (ctrl[0]) begin
        if (count == 0) begin
          expired <= 1;
          if (ctrl[1]) count <= load;
          else ctrl[0] <= 0;
        end else begin
          count <= count - 1;
        end
      end
      // Access: wait states then one-cycle ack (the wrapper samples rdata with ack).
      if (req && !ack) begin
        if (wcnt != waitq[3:0]) wcnt <= wcnt + 1;
      end else begin
        wcnt <= 0;
      end
      if (fire) begin
        ack <= 1;
        err <= !in_map;
        if (we && in_map) begin
          for (int l = 0; l < LANES; l++) begin
            logic [5:0] off;
            logic [3:0] s;
            logic [31:0] d;
            off = base_off + 6'(l * 4);
            s = wstrb[l*4+:4];
            d = wdata[l*32+:32];
            if (s != 0) begin
              case (off)
                6'h04: scratch0 <= merge(scratch0, d, s);
                6'h08: scratch1 <= merge(scratch1, d, s);
                6'h0c: if (s[0]) ctrl <= d[2:0];
                6'h10: begin load <= merge(load, d, s); count <= merge(load, d, s); end
                6'h18: if (s[0] && d[0]) expired <= 0;
                6'h24: waitq <= merge(waitq, d, s) & 32'hf;
                default: ;
              endcase
            end
          end
        end
      end
    end
  end
endmodule
