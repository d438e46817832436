/* A static "hello" for the FROM scratch example: no libc, loader or shell needed in the image. */
#include <stdio.h>

int main(void) {
    puts("hello from a FROM scratch image built by hoist");
    return 0;
}
