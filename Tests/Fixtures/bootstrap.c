// A minimal custom runtime in C: one keep-alive connection to the Runtime API, GET /next, echo the
// event back as the response. Static and tiny, so benchmarks measure Lamina, not the runtime.
// _HANDLER=echo (default) echoes; _HANDLER=empty answers {} .
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

static char buffer[7 << 20];

static int connect_api(const char *address) {
    char host[64];
    const char *colon = strchr(address, ':');
    if (!colon || colon - address >= (long)sizeof host) return -1;
    memcpy(host, address, colon - address);
    host[colon - address] = 0;
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(atoi(colon + 1))};
    inet_pton(AF_INET, host, &addr.sin_addr);
    int s = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(s, (struct sockaddr *)&addr, sizeof addr) != 0) return -1;
    return s;
}

// Reads one HTTP response; returns the body length and fills request_id (if present).
static long read_response(int s, char *request_id) {
    long used = 0;
    char *end = NULL;
    while (!end) {
        long n = read(s, buffer + used, sizeof buffer - used - 1);
        if (n <= 0) exit(1);
        used += n;
        buffer[used] = 0;
        end = strstr(buffer, "\r\n\r\n");
    }
    long header_length = end + 4 - buffer;
    long content_length = 0;
    for (char *line = buffer; line < end; line = strstr(line, "\r\n") + 2) {
        if (!strncasecmp(line, "Content-Length:", 15)) content_length = atol(line + 15);
        if (request_id && !strncasecmp(line, "Lambda-Runtime-Aws-Request-Id:", 30)) {
            char *value = line + 30;
            while (*value == ' ') value++;
            int i = 0;
            while (value[i] != '\r' && i < 63) { request_id[i] = value[i]; i++; }
            request_id[i] = 0;
        }
    }
    while (used < header_length + content_length) {
        long n = read(s, buffer + used, sizeof buffer - used - 1);
        if (n <= 0) exit(1);
        used += n;
    }
    memmove(buffer, buffer + header_length, content_length);
    return content_length;
}

int main(void) {
    const char *api = getenv("AWS_LAMBDA_RUNTIME_API");
    const char *handler = getenv("_HANDLER");
    int empty = handler && !strcmp(handler, "empty");
    if (!api) return 2;
    int s = connect_api(api);
    if (s < 0) return 3;
    char request_id[64];
    char head[512];
    for (;;) {
        const char *next = "GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: runtime\r\n\r\n";
        if (write(s, next, strlen(next)) < 0) return 4;
        long length = read_response(s, request_id);
        const char *body = empty ? "{}" : buffer;
        if (empty) length = 2;
        int n = snprintf(head, sizeof head,
                         "POST /2018-06-01/runtime/invocation/%s/response HTTP/1.1\r\nHost: runtime\r\n"
                         "Content-Type: application/json\r\nContent-Length: %ld\r\n\r\n", request_id, length);
        if (write(s, head, n) < 0 || (length > 0 && write(s, body, length) < 0)) return 5;
        read_response(s, NULL);
    }
}
