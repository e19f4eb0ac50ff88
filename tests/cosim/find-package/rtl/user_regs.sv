// A user's own design, outside the coreio tree: four registers behind an
// APB4 port with the user's names (a "regs_" prefix), no interrupt.
//   0x0 ID RO 0x55534552 ("USER")   0x4..0xC scratch RW
module user_regs (
    input  logic        clk,
    input  logic        rst_n,
    input  logic        regs_psel,
    input  logic        regs_penable,
    input  logic        regs_pwrite,
    input  logic [3:0]  regs_paddr,
    input  logic [31:0] regs_pwdata,
    output logic [31:0] regs_prdata,
    output logic        regs_pready
);
  logic [31:0] r[1:3];
  assign regs_pready = 1'b1;
  assign regs_prdata = regs_paddr[3:2] == 0 ? 32'h55534552 : r[regs_paddr[3:2]];
  always_ff @(posedge clk) begin
    if (!rst_n) begin
      r[1] <= 0; r[2] <= 0; r[3] <= 0;
    end else if (regs_psel && regs_penable && regs_pwrite && regs_paddr[3:2] != 0) begin
      r[regs_paddr[3:2]] <= regs_pwdata;
    end
  end
endmodule
