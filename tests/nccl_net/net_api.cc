#include "net_api.h"

#include <unistd.h>

#include <atomic>
#include <type_traits>

namespace nccltest {

namespace {
std::mutex gLogMu;
std::vector<LogLine>& gLog() {
  static std::vector<LogLine> v;
  return v;
}
}  // namespace

std::vector<LogLine> logLines() {
  std::lock_guard<std::mutex> lock(gLogMu);
  return gLog();
}
void clearLog() {
  std::lock_guard<std::mutex> lock(gLogMu);
  gLog().clear();
}

void testLogger(abi::LogLevel level, unsigned long flags, const char* file, int line,
                const char* fmt, ...) {
  char buf[2048];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  {
    std::lock_guard<std::mutex> lock(gLogMu);
    gLog().push_back({level, flags, buf});
  }
  if (level == abi::kLogWarn)
    fprintf(stderr, "[pid %d] plugin WARN %s:%d %s\n", getpid(), file, line, buf);
}

namespace {

template <int V>
struct Table;
template <>
struct Table<6> {
  using T = abi::NetV6;
  using P = abi::NetPropertiesV6;
};
template <>
struct Table<7> {
  using T = abi::NetV7;
  using P = abi::NetPropertiesV7;
};
template <>
struct Table<8> {
  using T = abi::NetV8;
  using P = abi::NetPropertiesV8;
};
template <>
struct Table<9> {
  using T = abi::NetV9;
  using P = abi::NetPropertiesV9;
};
template <>
struct Table<10> {
  using T = abi::NetV10;
  using P = abi::NetPropertiesV10;
};
template <>
struct Table<11> {
  using T = abi::NetV11;
  using P = abi::NetPropertiesV11;
};

template <int V>
class Impl final : public NetApi {
  using T = typename Table<V>::T;
  using P = typename Table<V>::P;

 public:
  explicit Impl(const T* t) : t_(t) {}
  int version() const override { return V; }
  const char* name() const override { return t_->name; }

  Result init(void** ctx, int trafficClass) override {
    *ctx = nullptr;
    if constexpr (V == 11) {
      abi::NetCommConfig cfg{trafficClass};
      static std::atomic<uint64_t> commId{0x1000};
      return t_->init(ctx, ++commId, &cfg, testLogger, nullptr);
    } else if constexpr (V == 10) {
      trafficClass_.store(trafficClass);
      return t_->init(testLogger, nullptr);
    } else {
      (void)trafficClass;
      return t_->init(testLogger);
    }
  }
  Result finalize(void* ctx) override {
    if constexpr (V == 11)
      return t_->finalize(ctx);
    else {
      (void)ctx;
      return abi::kSuccess;
    }
  }
  Result setNetAttr(void* ctx, abi::NetAttr* attr) override {
    if constexpr (V == 11)
      return t_->setNetAttr(ctx, attr);
    else {
      (void)ctx;
      (void)attr;
      return abi::kSuccess;
    }
  }
  Result devices(int* n) override { return t_->devices(n); }
  Result getProperties(int dev, Props* out) override {
    P p;
    std::memset(&p, 0xab, sizeof p);  // every field must be written
    Result r = t_->getProperties(dev, &p);
    if (r != abi::kSuccess) return r;
    out->name = p.name ? p.name : "";
    out->pciPathNull = p.pciPath == nullptr;
    out->pciPath = p.pciPath ? p.pciPath : "";
    out->guid = p.guid;
    out->ptrSupport = p.ptrSupport;
    out->speed = p.speed;
    out->port = p.port;
    out->maxComms = p.maxComms;
    out->maxRecvs = p.maxRecvs;
    if constexpr (V >= 7) out->netDeviceType = p.netDeviceType;
    if constexpr (V >= 8) out->regIsGlobal = p.regIsGlobal;
    if constexpr (V >= 9) {
      out->forceFlush = p.forceFlush;
      out->vNdevs = p.vProps.ndevs;
      for (int i = 0; i < abi::kMaxDevsPerNic && i < p.vProps.ndevs; ++i)
        out->vDevs[i] = p.vProps.devs[i];
      out->maxP2pBytes = p.maxP2pBytes;
      out->maxCollBytes = p.maxCollBytes;
    }
    if constexpr (V >= 11) out->maxMultiRequestSize = p.maxMultiRequestSize;
    return r;
  }
  Result listen(void* ctx, int dev, void* handle, void** lc) override {
    if constexpr (V == 11)
      return t_->listen(ctx, dev, handle, lc);
    else {
      (void)ctx;
      return t_->listen(dev, handle, lc);
    }
  }
  Result connect(void* ctx, int dev, void* handle, void** sc) override {
    abi::NetDeviceHandle* dh = nullptr;  // NULL: no device offload requested
    if constexpr (V == 11)
      return t_->connect(ctx, dev, handle, sc, &dh);
    else if constexpr (V == 10) {
      (void)ctx;
      abi::NetCommConfig cfg{trafficClass_.load()};
      return t_->connect(dev, &cfg, handle, sc, &dh);
    } else if constexpr (V >= 7) {
      (void)ctx;
      return t_->connect(dev, handle, sc, &dh);
    } else {
      (void)ctx;
      (void)dh;
      return t_->connect(dev, handle, sc);
    }
  }
  Result accept(void* lc, void** rc) override {
    if constexpr (V >= 7) {
      abi::NetDeviceHandle* dh = nullptr;
      return t_->accept(lc, rc, &dh);
    } else {
      return t_->accept(lc, rc);
    }
  }
  Result regMr(void* comm, void* data, size_t size, int type, void** mh) override {
    if constexpr (V <= 7)
      return t_->regMr(comm, data, narrow(size), type, mh);
    else
      return t_->regMr(comm, data, size, type, mh);
  }
  Result deregMr(void* comm, void* mh) override { return t_->deregMr(comm, mh); }
  Result isend(void* sc, void* data, size_t size, int tag, void* mh, void** req) override {
    if constexpr (V <= 8)
      return t_->isend(sc, data, narrow(size), tag, mh, req);
    else if constexpr (V == 9)
      return t_->isend(sc, data, size, tag, mh, req);
    else
      return t_->isend(sc, data, size, tag, mh, nullptr, req);
  }
  Result irecv(void* rc, int n, void** data, size_t* sizes, int* tags, void** mhs,
               void** req) override {
    if constexpr (V <= 8) {
      int narrowSizes[64];
      for (int i = 0; i < n && i < 64; ++i) narrowSizes[i] = narrow(sizes[i]);
      return t_->irecv(rc, n, data, narrowSizes, tags, mhs, req);
    } else if constexpr (V == 9) {
      return t_->irecv(rc, n, data, sizes, tags, mhs, req);
    } else {
      void* ph[64] = {};
      return t_->irecv(rc, n, data, sizes, tags, mhs, ph, req);
    }
  }
  Result iflush(void* rc, int n, void** data, int* sizes, void** mhs, void** req) override {
    return t_->iflush(rc, n, data, sizes, mhs, req);
  }
  Result test(void* req, int* done, int* sizes) override { return t_->test(req, done, sizes); }
  Result closeSend(void* c) override { return t_->closeSend(c); }
  Result closeRecv(void* c) override { return t_->closeRecv(c); }
  Result closeListen(void* c) override { return t_->closeListen(c); }
  bool hasMakeVDevice() const override {
    if constexpr (V >= 9)
      return t_->makeVDevice != nullptr;
    else
      return false;
  }
  Result makeVDevice(int* d, abi::NetVDeviceProps* props) override {
    if constexpr (V >= 9)
      return t_->makeVDevice(d, props);
    else {
      (void)d;
      (void)props;
      return abi::kInternalError;
    }
  }

 private:
  static int narrow(size_t s) {
    return s > static_cast<size_t>(INT_MAX) ? -1 : static_cast<int>(s);
  }
  const T* t_;
  std::atomic<int> trafficClass_{-1};  // threads of one process share this driver
};

}  // namespace

std::unique_ptr<NetApi> loadNet(void* lib, int version, std::string* why) {
  std::string sym = "ncclNetPlugin_v" + std::to_string(version);
  void* p = dlsym(lib, sym.c_str());
  if (p == nullptr) {
    *why = sym + " not found: " + (dlerror() ?: "?");
    return nullptr;
  }
  switch (version) {
    case 6:
      return std::make_unique<Impl<6>>(static_cast<const abi::NetV6*>(p));
    case 7:
      return std::make_unique<Impl<7>>(static_cast<const abi::NetV7*>(p));
    case 8:
      return std::make_unique<Impl<8>>(static_cast<const abi::NetV8*>(p));
    case 9:
      return std::make_unique<Impl<9>>(static_cast<const abi::NetV9*>(p));
    case 10:
      return std::make_unique<Impl<10>>(static_cast<const abi::NetV10*>(p));
    case 11:
      return std::make_unique<Impl<11>>(static_cast<const abi::NetV11*>(p));
  }
  *why = "no driver for version " + std::to_string(version);
  return nullptr;
}

}  // namespace nccltest
