/* Stage 2 of the article in C: read whole lines from one client, SO_REUSEADDR. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <sys/socket.h>

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
    listen(server, 5);
    printf("Server: started. Listening to new connections on port %d...\n", port);

    int client = accept(server, NULL, NULL);
    printf("Server: client connected\n");

    FILE *in = fdopen(client, "r");
    char line[4096];
    while (fgets(line, sizeof line, in) != NULL) {
        line[strcspn(line, "\r\n")] = '\0';
        printf("Server: received from client: %s\n", line);
    }
    printf("Server: client disconnected\n");
    fclose(in);
    close(server);
    return 0;
}
