/* Stage 3 of the article in C: non-blocking sockets, many clients, one busy loop. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <sys/socket.h>

#define MAX_CLIENTS 128
#define BUF_SIZE 4096

struct client {
    int fd;
    char buf[BUF_SIZE];
    size_t len;
};

static struct client clients[MAX_CLIENTS];
static int nclients = 0;

static void set_nonblocking(int fd) {
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

int main(int argc, char **argv) {
    int port = argc > 1 ? atoi(argv[1]) : 5555;
    int server = socket(AF_INET, SOCK_STREAM, 0);
    int yes = 1;
    setsockopt(server, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(server, (struct sockaddr *)&addr, sizeof addr) < 0) {
        perror("bind");
        return 1;
    }
    listen(server, 16);
    set_nonblocking(server);
    printf("Server: started. Listening to new connections on port %d...\n", port);

    for (;;) {
        int fd = accept(server, NULL, NULL);
        if (fd >= 0) {
            if (nclients == MAX_CLIENTS) {
                close(fd);
            } else {
                set_nonblocking(fd);
                clients[nclients].fd = fd;
                clients[nclients].len = 0;
                nclients++;
                printf("Server: client connected\n");
            }
        }

        for (int i = 0; i < nclients; i++) {
            struct client *c = &clients[i];
            ssize_t n = recv(c->fd, c->buf + c->len, BUF_SIZE - c->len, 0);
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
                continue;
            if (n <= 0) {
                /* 0 is a clean close, -1 a reset or other error: either way it is gone */
                close(c->fd);
                clients[i] = clients[nclients - 1];
                nclients--;
                i--;
                printf("Server: client disconnected\n");
                continue;
            }
            c->len += n;
            char *start = c->buf;
            char *nl;
            while ((nl = memchr(start, '\n', c->buf + c->len - start)) != NULL) {
                *nl = '\0';
                if (nl > start && nl[-1] == '\r')
                    nl[-1] = '\0';
                printf("Server: received from client: %s\n", start);
                start = nl + 1;
            }
            c->len -= start - c->buf;
            memmove(c->buf, start, c->len);
            if (c->len == BUF_SIZE) {
                /* a line longer than the buffer: print what we have */
                printf("Server: received from client: %.*s\n", BUF_SIZE, c->buf);
                c->len = 0;
            }
        }
    }
}
