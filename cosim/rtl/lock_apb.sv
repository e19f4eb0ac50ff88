// A register block with a deep seeded bug, the target of the coverage-guided
// fuzzing example (APB4, zero wait states, 32-bit data).
//
//   0x00 ID       RO  0x4c4f434b ("LOCK")
//   0x04 SCRATCH  RW
//   0x08 KEY      WO  the unlock sequence: 0x00000005, 0xffffffff, 0x0000000a
//                     written in this order; any other value starts it over
//   0x0c CTRL     RW  bit 0: ALARM (raise irq), taken only when unlocked
//   0x10 STATUS   RO  bits 1:0: keys accepted so far (3 = unlocked)
//   other         PSLVERR
//
// Seeded bug: the alarm flop has no reset, so once ALARM is set on an
// unlocked device, irq stays high through every reset after it.
module lock_apb (
    input  logic        PCLK,
    input  logic        PRESETn,
    input  logic        PSEL,
    input  logic        PENABLE,
    input  logic        PWRITE,
    input  logic [11:0] PADDR,
    input  logic [31:0] PWDATA,
    output logic [31:0] PRDATA,
    output logic        PREADY,
    output logic        PSLVERR,
    output logic        irq
);
  logic [1:0]  stage;
  logic [31:0] scratch;
  logic        alarm;
  wire access = PSEL && PENABLE;
  wire wr = access && PWRITE;

  always_ff @(posedge PCLK or negedge PRESETn) begin
    if (!PRESETn) begin
      stage <= 2'd0;
      scratch <= 32'd0;
    end else if (wr) begin
      case (PADDR)
        12'h004: scratch <= PWDATA;
        12'h008: begin
          if (stage == 2'd0 && PWDATA == 32'h0000_0005) stage <= 2'd1;
          else if (stage == 2'd1 && PWDATA == 32'hffff_ffff) stage <= 2'd2;
          else if (stage == 2'd2 && PWDATA == 32'h0000_000a) stage <= 2'd3;
          else if (stage == 2'd3) stage <= 2'd3;
          else if (PWDATA == 32'h0000_0005) stage <= 2'd1;
          else stage <= 2'd0;
        end
        default: ;
      endcase
    end
  end

  // The bug: no reset term.
  always_ff @(posedge PCLK) begin
    if (wr && PADDR == 12'h00c && stage == 2'd3 && PWDATA[0]) alarm <= 1'b1;
  end
  initial alarm = 1'b0;

  always_comb begin
    PSLVERR = 1'b0;
    case (PADDR)
      12'h000: PRDATA = 32'h4c4f_434b;
      12'h004: PRDATA = scratch;
      12'h008: PRDATA = 32'd0;
      12'h00c: PRDATA = {31'd0, alarm};
      12'h010: PRDATA = {30'd0, stage};
      default: begin
        PRDATA = 32'd0;
        PSLVERR = access;
      end
    endcase
  end
  assign PREADY = 1'b1;
  assign irq = alarm;
endmodule
