/* Uses the C API from an installed libcoreio. */
#include <coreio.h>
#include <errno.h>
#include <stdio.h>

int main(void) {
    int ok = coreio_irq_update(0, 0, 1) == -ENOTCONN;
    puts(ok ? "consumer_c: ok" : "consumer_c: FAILED");
    return ok ? 0 : 1;
}
