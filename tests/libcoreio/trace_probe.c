/* A C device program for the install test: connects to a VM it plays itself
 * (a listener on 127.0.0.1 whose backlog completes the connects), raises one IRQ
 * edge and disconnects. Run with COREIO_TRACE=FILE, it must leave a trace
 * whose header names the target. Usage: trace_probe (prints the target). */
#define _POSIX_C_SOURCE 200809L
#include <coreio.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

int main(void) {
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {0};
    socklen_t len = sizeof a;
    char target[64];
    int rc;
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&a, sizeof a) != 0 || listen(lfd, 4) != 0 ||
        getsockname(lfd, (struct sockaddr *)&a, &len) != 0) {
        perror("trace_probe: listen on 127.0.0.1");
        return 2;
    }
    snprintf(target, sizeof target, "127.0.0.1:%u", (unsigned)ntohs(a.sin_port));
    rc = coreio_connect(target);
    if (rc != 0) {
        fprintf(stderr, "trace_probe: coreio_connect(%s) = %d\n", target, rc);
        return 1;
    }
    rc = coreio_irq_update(0, 1, 1);
    if (rc == 0) rc = coreio_irq_update(0, 1, 0);
    coreio_disconnect();
    close(lfd);
    if (rc != 0) {
        fprintf(stderr, "trace_probe: coreio_irq_update = %d\n", rc);
        return 1;
    }
    puts(target);
    return 0;
}
