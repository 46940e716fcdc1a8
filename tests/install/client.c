/* A plain C client built against the installed package with pkg-config: checks that the header is
 * C, that libtrellis.so exports the API, and runs a 1-rank AllReduce. */
#include <stdio.h>
#include <trellis/trellis.h>
#include <trellis/topology.h> /* must compile as C too */

int main(void) {
  int version = 0;
  trellisUniqueId id;
  trellisComm_t comm;
  float in[4] = {1, 2, 3, 4}, out[4] = {0};
  if (trellisGetVersion(&version) != trellisSuccess || version != TRELLIS_VERSION_CODE) return 1;
  if (trellisGetUniqueId(&id) != trellisSuccess) return 2;
  if (trellisCommInitRank(&comm, 1, id, 0) != trellisSuccess) {
    fprintf(stderr, "init: %s\n", trellisGetLastError(NULL));
    return 3;
  }
  if (trellisAllReduce(in, out, 4, trellisFloat32, trellisSum, comm, NULL) != trellisSuccess) return 4;
  if (out[3] != 4.0f) return 5;
  if (trellisAllReduce(NULL, out, 4, trellisFloat32, trellisSum, comm, NULL) != trellisInvalidArgument) return 6;
  trellisCommDestroy(comm);
  printf("client OK: trellis %d\n", version);
  return 0;
}
