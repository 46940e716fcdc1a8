// The TCP backend's send and receive comms (the data path; see tcp_wire.h for the protocol).
// Everything is non-blocking and progressed from the calls NCCL makes (isend, irecv, test):
// NCCL's proxy thread polls test() continuously, so no helper thread is needed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "core/backend.h"
#include "core/socket.h"
#include "tcp/tcp_wire.h"

namespace trellis::ncclnet {

struct TcpConfig {
  int dataSockets = 4;
  size_t chunkBytes = 512 * 1024;
  int maxRecvs = 8;
  double connectTimeoutS = 60;
};

/// Options every stream gets: TCP_NODELAY, keepalive (a dead peer is found in about two minutes
/// instead of hanging test() forever), and the traffic class as IP TOS / IPv6 traffic class.
void tuneStream(int fd, int family, int trafficClass);

class TcpSendComm final : public SendComm {
 public:
  TcpSendComm(net::Socket ctrl, std::vector<net::Socket> data, std::string desc,
              const TcpConfig& cfg);
  Status isend(const void* data, size_t size, int tag, Request** req) override;
  Status test(Request* req, bool* done, size_t* sizes) override;
  std::string describe() const override { return desc_; }

 private:
  struct Req : Request {
    size_t size = 0;
    size_t chunksLeft = 0;
  };
  struct Chunk {
    Req* req;
    tcpwire::ChunkHeader hdr;
    const char* payload;
    size_t sent;  // of header + payload
  };
  struct Cts {
    uint64_t seq;
    uint16_t slot;
    int n;
    size_t sizes[tcpwire::kMaxRecvs];
    int tags[tcpwire::kMaxRecvs];
    bool used[tcpwire::kMaxRecvs];
    int nUsed;
  };
  Status progress();
  Status readControl();
  Status writeData();
  Status setError(Status s);

  net::Socket ctrl_;
  std::vector<net::Socket> data_;
  std::vector<std::deque<Chunk>> queues_;
  std::string desc_;
  TcpConfig cfg_;
  std::vector<char> rx_;
  size_t rxLen_ = 0;
  std::deque<Cts> fifo_;
  uint64_t nextCts_ = 0;
  std::unique_ptr<Req[]> reqs_;
  std::vector<Req*> free_;
  size_t rr_ = 0;
  bool peerClosed_ = false;
  Status error_;
};

class TcpRecvComm final : public RecvComm {
 public:
  TcpRecvComm(net::Socket ctrl, std::vector<net::Socket> data, std::string desc,
              const TcpConfig& cfg);
  Status irecv(int n, void* const* data, const size_t* sizes, const int* tags,
               Request** req) override;
  Status test(Request* req, bool* done, size_t* sizes) override;
  std::string describe() const override { return desc_; }

 private:
  struct Req : Request {
    uint64_t seq = 0;
    char* data[tcpwire::kMaxRecvs];
    size_t cap[tcpwire::kMaxRecvs];
    int tags[tcpwire::kMaxRecvs];
    size_t total[tcpwire::kMaxRecvs];
    size_t got[tcpwire::kMaxRecvs];
    bool known[tcpwire::kMaxRecvs];
    int subsDone = 0;
  };
  struct Rx {
    tcpwire::ChunkHeader hdr;
    size_t hdrGot = 0;
    bool inPayload = false;
    char* dst = nullptr;
    size_t left = 0;
    Req* req = nullptr;
    bool eof = false;
  };
  Status progress();
  Status writeControl();
  Status readData(size_t i);
  Status onHeader(Rx& rx);
  Status setError(Status s);

  net::Socket ctrl_;
  std::vector<net::Socket> data_;
  std::vector<Rx> rx_;
  std::string desc_;
  TcpConfig cfg_;
  std::vector<char> tx_;
  size_t txSent_ = 0;
  std::unique_ptr<Req[]> reqs_;
  std::vector<int> freeSlots_;
  uint64_t nextSeq_ = 0;
  size_t eofs_ = 0;
  Status error_;
};

}  // namespace trellis::ncclnet
