/* Stage 1 of the article in C: one client, read 10 bytes at a time. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <sys/socket.h>

int main(int argc, char **argv) {
    int port = argc > 1 ? atoi(argv[1]) : 5555;
    int server = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(server, (struct sockaddr *)&addr, sizeof addr) < 0) {
        perror("bind");
        return 1;
    }
    listen(server, 5);
    printf("Server: started. Listening to new connections on port %d...\n", port);

    int client = accept(server, NULL, NULL);
    printf("Server: client connected\n");

    char buf[11];
    for (;;) {
        ssize_t n = recv(client, buf, 10, MSG_WAITALL);
        if (n <= 0)
            break;
        buf[n] = '\0';
        printf("Server: received from client: %s\n", buf);
        if (n < 10)
            break;
    }
    printf("Server: client disconnected\n");
    close(client);
    close(server);
    return 0;
}
