/* Links the installed C ABI and prints what the library says of itself. */
#include <stdio.h>

#include <nantrace/nantrace.h>

int main(void) {
  printf("abi %d header %d\n", nantrace_abi_version(), NANTRACE_ABI_VERSION);
  return nantrace_abi_version() == NANTRACE_ABI_VERSION ? 0 : 1;
}
