// GPUDirect RDMA pieces that need no GPU: the selection rule (direct only when the GPU and the NIC
// share a PCIe switch) on real machines' topology files, the CUDA driver missing or unusable
// (reported clearly, memory treated as host memory), and the device registration path against a
// fake driver (tests/rdma/fake_cuda.c) and fake verbs calls: dmabuf first, peer memory as the
// fallback, both failures named. Never run against a real GPU: see docs/VERBS.md.
#include <dlfcn.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <infiniband/verbs.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>

#include "core/params.h"
#include "topo/sysfs.h"
#include "transport/verbs/gpu_direct.h"
#include "transport/verbs/verbs_internal.h"

namespace trellis::transport::verbs {
namespace {

topo::System fixture(const std::string& name) {
  std::string path = std::string(TRELLIS_SOURCE_DIR) + "/../shared/fixtures/nccl-topo/" + name;
  if (!std::filesystem::exists(path)) path = "/work/shared/fixtures/nccl-topo/" + name;
  auto s = topo::loadTopologyFile(path);
  EXPECT_TRUE(s.isOk()) << path << ": " << s.status().message();
  return s.isOk() ? s.value() : topo::System{};
}

PortInfo nicAt(const std::string& bus, const std::string& dev = "mlx5_x") {
  PortInfo p;
  p.dev = dev;
  p.busId = bus;
  return p;
}

// Azure ND H100 v5: one GPU and one NDR NIC under each of eight PCIe switches, four per socket.
TEST(GdrRule, AzureNdv5OneNicPerGpuSwitch) {
  topo::System s = fixture("azure-ndv5-h100.xml");
  ASSERT_EQ(s.ofKind(topo::NodeKind::kGpu).size(), 8u);
  ASSERT_EQ(s.ofKind(topo::NodeKind::kNic).size(), 8u);
  GdrChoice same = chooseGdr(s, "0001:00:00.0", nicAt("0101:00:00.0"));
  EXPECT_TRUE(same.direct) << same.why;
  EXPECT_EQ(same.path, topo::PathKind::kPix);
  EXPECT_NE(same.why.find("share a PCIe switch (path PIX)"), std::string::npos) << same.why;
  // The neighbouring switch's NIC on the same socket: through the CPU, staged.
  GdrChoice next = chooseGdr(s, "0001:00:00.0", nicAt("0102:00:00.0"));
  EXPECT_FALSE(next.direct) << next.why;
  EXPECT_TRUE(next.path == topo::PathKind::kPhb || next.path == topo::PathKind::kNode) << next.why;
  EXPECT_NE(next.why.find("do not share a PCIe switch"), std::string::npos) << next.why;
  // The other socket.
  GdrChoice sys = chooseGdr(s, "0001:00:00.0", nicAt("0105:00:00.0"));
  EXPECT_FALSE(sys.direct);
  EXPECT_EQ(sys.path, topo::PathKind::kSys) << sys.why;
  // Every GPU has exactly one NIC it may use directly: the one under its switch.
  for (int g : s.ofKind(topo::NodeKind::kGpu)) {
    int direct = 0;
    for (int n : s.ofKind(topo::NodeKind::kNic)) direct += chooseGdr(s, g, n).direct;
    EXPECT_EQ(direct, 1) << s.nodes[g].busId;
  }
}

// AWS p4d.24xlarge: two GPUs and one EFA NIC under each switch; the NVIDIA-recorded IBM dump (NCCL
// marked gdr="1" on each NIC) with NICs found by RDMA device name; Azure NC A100 v4, whose
// Ethernet NIC hangs off the CPU (NCCL recorded gdr="0"): staged.
TEST(GdrRule, AwsP4dIbmAndAzureNcv4) {
  topo::System p4d = fixture("aws-p4d.24xlarge-a100.xml");
  for (const char* gpu : {"0000:10:1c.0", "0000:10:1d.0"}) {
    GdrChoice c = chooseGdr(p4d, gpu, nicAt("0000:10:1b.0"));
    EXPECT_TRUE(c.direct) << c.why;
  }
  EXPECT_FALSE(chooseGdr(p4d, "0000:10:1c.0", nicAt("0000:20:1b.0")).direct);
  EXPECT_EQ(chooseGdr(p4d, "0000:10:1c.0", nicAt("0000:90:1b.0")).path, topo::PathKind::kSys);

  topo::System ibm = fixture("ibm-gx3d-8xh100-full-dump.xml");
  PortInfo byName = nicAt("", "mlx5_7");  // no PCI address: found by its device name
  GdrChoice c = chooseGdr(ibm, "0000:a4:00.0", byName);
  EXPECT_TRUE(c.direct) << c.why;
  EXPECT_NE(c.why.find("for mlx5_7"), std::string::npos) << c.why;
  EXPECT_FALSE(chooseGdr(ibm, "0000:a4:00.0", nicAt("", "mlx5_6")).direct);
  // CUDA writes an 8-digit domain and upper-case hex.
  EXPECT_TRUE(chooseGdr(ibm, "00000000:A4:00.0", byName).direct);

  topo::System ncv4 = fixture("azure-ncv4-a100-pcie.xml");
  const auto nics = ncv4.ofKind(topo::NodeKind::kNic);
  ASSERT_FALSE(nics.empty());
  for (int g : ncv4.ofKind(topo::NodeKind::kGpu)) EXPECT_FALSE(chooseGdr(ncv4, g, nics[0]).direct);
}

TEST(GdrRule, UnknownDevicesAreStaged) {
  topo::System s = fixture("azure-ndv5-h100.xml");
  GdrChoice gpu = chooseGdr(s, "0000:42:00.0", nicAt("0101:00:00.0"));
  EXPECT_FALSE(gpu.direct);
  EXPECT_NE(gpu.why.find("GPU 0000:42:00.0 is not in the topology"), std::string::npos) << gpu.why;
  GdrChoice rxe = chooseGdr(s, "0001:00:00.0", nicAt("", "rxe0"));
  EXPECT_FALSE(rxe.direct);
  EXPECT_NE(rxe.why.find("NIC rxe0 is not in the topology"), std::string::npos) << rxe.why;
  // A NIC's bus id given as the GPU: not a GPU.
  EXPECT_FALSE(chooseGdr(s, "0101:00:00.0", nicAt("0101:00:00.0")).direct);
  EXPECT_FALSE(chooseGdr(s, -1, 3).direct);
}

// No CUDA in this process (these machines have no driver): nothing is device memory, and every
// way the driver can be missing says so.
TEST(GdrDriver, AbsentOrUnusableDriverIsReportedClearly) {
  std::string why;
  if (dlopen("libcuda.so.1", RTLD_NOW | RTLD_NOLOAD) == nullptr) {
    EXPECT_EQ(CudaDriver::open("", &why), nullptr);
    EXPECT_NE(why.find(gdrCompiled() ? "has not loaded the CUDA driver (libcuda.so.1)"
                                     : "without CUDA headers"),
              std::string::npos)
        << why;
  }
  EXPECT_EQ(CudaDriver::open("/nonexistent/libcuda.so.1", &why), nullptr);
  if (gdrCompiled()) {
    EXPECT_NE(why.find("cannot load the CUDA driver /nonexistent/libcuda.so.1: "),
              std::string::npos)
        << why;
    EXPECT_NE(why.find("No such file"), std::string::npos) << why;
    EXPECT_EQ(CudaDriver::open("libc.so.6", &why), nullptr);
    EXPECT_NE(why.find("lacks cuPointerGetAttribute"), std::string::npos) << why;
  }
  // The transport's context: host memory, and a choice that says why there is no direct path.
  GdrContext ctx(GdrContext::Mode::kAuto,
                 std::make_unique<topo::System>(fixture("azure-ndv5-h100.xml")),
                 "/nonexistent/libcuda.so.1");
  std::vector<char> host(4096);
  CudaPointer p = ctx.classify(host.data());
  EXPECT_FALSE(p.device);
  EXPECT_FALSE(p.managed);
  GdrChoice c = ctx.choose(0, nicAt("0101:00:00.0"));
  EXPECT_FALSE(c.direct);
  EXPECT_NE(c.why.find(gdrCompiled() ? "cannot load the CUDA driver" : "without CUDA headers"),
            std::string::npos)
      << c.why;
}

TEST(GdrDriver, ModeParameter) {
  ParamBase* p = findParam("TRELLIS_IB_GDR");
  ASSERT_NE(p, nullptr);
  ASSERT_TRUE(p->setOverride("sometimes").isOk());
  auto bad = gdrModeFromParams();
  ASSERT_FALSE(bad.isOk());
  EXPECT_NE(bad.status().message().find("TRELLIS_IB_GDR='sometimes' is not auto or off"),
            std::string::npos);
  auto opts = verbsOptionsFromParams();
  EXPECT_FALSE(opts.isOk());
  ASSERT_TRUE(p->setOverride("off").isOk());
  ASSERT_TRUE(verbsOptionsFromParams().isOk());
  EXPECT_FALSE(verbsOptionsFromParams()->gpuDirect);
  ASSERT_TRUE(p->setOverride("").isOk());
  EXPECT_TRUE(verbsOptionsFromParams()->gpuDirect);
}

// The device path against tests/rdma/fake_cuda.c: one device allocation the test declares.
class FakeCuda : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!gdrCompiled())
      GTEST_SKIP() << "built without CUDA headers: the device path is not compiled";
    lib_ = dlopen(TRELLIS_FAKE_CUDA, RTLD_NOW | RTLD_LOCAL);
    ASSERT_NE(lib_, nullptr) << dlerror();
    setAlloc_ = reinterpret_cast<void (*)(uintptr_t, size_t, int, int)>(
        dlsym(lib_, "fakeCudaSetAllocation"));
    setBus_ = reinterpret_cast<void (*)(const char*)>(dlsym(lib_, "fakeCudaSetBusId"));
    failDmabuf_ = reinterpret_cast<void (*)(int)>(dlsym(lib_, "fakeCudaFailDmabuf"));
    setInit_ = reinterpret_cast<void (*)(int)>(dlsym(lib_, "fakeCudaSetInitialized"));
    lastExport_ =
        reinterpret_cast<void (*)(uintptr_t*, size_t*)>(dlsym(lib_, "fakeCudaLastExport"));
    ASSERT_TRUE(setAlloc_ && setBus_ && failDmabuf_ && setInit_ && lastExport_);
    // A device allocation that does not start on a page (small cuMemAllocs share pages).
    setAlloc_(kBase, kSize, 1, 0);
    setBus_("00000000:01:00.0");
    failDmabuf_(0);
    setInit_(1);
  }
  void TearDown() override {
    if (lib_ != nullptr) dlclose(lib_);
  }

  // Fake verbs: record the calls, answer with a static ibv_mr or fail with `errno`.
  struct Calls {
    int dmabuf = 0, mr = 0;
    uint64_t offset = 0, iova = 0;
    size_t len = 0;
    int fdOk = 0;
    void* addr = nullptr;
    int dmabufErrno = 0, mrErrno = 0;  // non-zero: that call fails
  };
  GdrVerbs fakeVerbs(Calls* c) {
    GdrVerbs v;
    v.regDmabuf = [c](ibv_pd*, uint64_t off, size_t len, uint64_t iova, int fd, int) -> ibv_mr* {
      ++c->dmabuf;
      c->offset = off;
      c->len = len;
      c->iova = iova;
      c->fdOk = fcntl(fd, F_GETFD) != -1;
      if (c->dmabufErrno != 0) {
        errno = c->dmabufErrno;
        return nullptr;
      }
      return &mr_;
    };
    v.regMr = [c](ibv_pd*, void* addr, size_t len, int) -> ibv_mr* {
      ++c->mr;
      c->addr = addr;
      c->len = len;
      if (c->mrErrno != 0) {
        errno = c->mrErrno;
        return nullptr;
      }
      return &mr_;
    };
    return v;
  }

  static constexpr uintptr_t kBase = 0x7f3a00200000 + 0x300;
  static constexpr size_t kSize = (5 << 20) + 100;
  void* lib_ = nullptr;
  void (*setAlloc_)(uintptr_t, size_t, int, int) = nullptr;
  void (*setBus_)(const char*) = nullptr;
  void (*failDmabuf_)(int) = nullptr;
  void (*setInit_)(int) = nullptr;
  void (*lastExport_)(uintptr_t*, size_t*) = nullptr;
  static ibv_mr mr_;
};
ibv_mr FakeCuda::mr_ = [] {
  ibv_mr m{};
  m.lkey = 17;
  m.rkey = 42;
  return m;
}();

TEST_F(FakeCuda, PointerAttributes) {
  std::string why;
  auto d = CudaDriver::open(TRELLIS_FAKE_CUDA, &why);
  ASSERT_NE(d, nullptr) << why;
  CudaPointer in = d->pointer(reinterpret_cast<void*>(kBase + 1000));
  EXPECT_TRUE(in.device);
  EXPECT_EQ(in.ordinal, 1);
  EXPECT_EQ(in.base, kBase);
  EXPECT_EQ(in.size, kSize);
  EXPECT_FALSE(d->pointer(reinterpret_cast<void*>(kBase + kSize)).device);  // past the end: host
  setAlloc_(kBase, kSize, 1, 1);
  CudaPointer managed = d->pointer(reinterpret_cast<void*>(kBase));
  EXPECT_FALSE(managed.device);
  EXPECT_TRUE(managed.managed);
  setAlloc_(kBase, kSize, 1, 0);
  setInit_(0);  // the driver is loaded but not initialised: nothing is device memory
  EXPECT_FALSE(d->pointer(reinterpret_cast<void*>(kBase)).device);
  setInit_(1);
  auto bus = d->busId(1);
  ASSERT_TRUE(bus.isOk());
  EXPECT_EQ(bus.value(), "00000000:01:00.0");
  auto noDev = d->busId(3);
  ASSERT_FALSE(noDev.isOk());
  EXPECT_NE(noDev.status().message().find("CUDA device 3: invalid argument (CUresult 1)"),
            std::string::npos)
      << noDev.status().message();
}

TEST_F(FakeCuda, DmabufFirstThenPeerMemoryThenAClearError) {
  std::string why;
  auto d = CudaDriver::open(TRELLIS_FAKE_CUDA, &why);
  ASSERT_NE(d, nullptr) << why;
  const CudaPointer p = d->pointer(reinterpret_cast<void*>(kBase));
  const uintptr_t page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  const uintptr_t addr = kBase + 2 * page;  // what the cache asks for: whole pages
  const size_t len = 3 * page;
  // 1. dmabuf: the allocation's pages exported, our range registered at its offset, iova = addr.
  Calls c;
  auto mr = regDeviceMemory(nullptr, "mlx5_0", *d, p, addr, len, 7, fakeVerbs(&c));
  ASSERT_TRUE(mr.isOk()) << mr.status().message();
  EXPECT_EQ(mr.value()->rkey, 42u);
  EXPECT_EQ(c.dmabuf, 1);
  EXPECT_EQ(c.mr, 0);
  uintptr_t eb = 0;
  size_t es = 0;
  lastExport_(&eb, &es);
  EXPECT_EQ(eb, kBase & ~(page - 1));
  EXPECT_EQ(es % page, 0u);
  EXPECT_GE(eb + es, kBase + kSize);
  EXPECT_EQ(c.offset, addr - eb);
  EXPECT_EQ(c.iova, addr);
  EXPECT_EQ(c.len, len);
  EXPECT_EQ(c.fdOk, 1);
  // 2. The NIC driver refuses dmabuf: ibv_reg_mr of the device address (nvidia-peermem).
  Calls c2;
  c2.dmabufErrno = EOPNOTSUPP;
  auto mr2 = regDeviceMemory(nullptr, "mlx5_0", *d, p, addr, len, 7, fakeVerbs(&c2));
  ASSERT_TRUE(mr2.isOk()) << mr2.status().message();
  EXPECT_EQ(c2.dmabuf, 1);
  EXPECT_EQ(c2.mr, 1);
  EXPECT_EQ(c2.addr, reinterpret_cast<void*>(addr));
  // 3. CUDA cannot export a dmabuf either, and peer memory is absent: both reasons named.
  failDmabuf_(1);
  Calls c3;
  c3.mrErrno = EFAULT;
  auto bad = regDeviceMemory(nullptr, "mlx5_0", *d, p, addr, len, 7, fakeVerbs(&c3));
  ASSERT_FALSE(bad.isOk());
  EXPECT_EQ(c3.dmabuf, 0);
  const std::string& m = bad.status().message();
  EXPECT_NE(m.find("CUDA device 1 memory"), std::string::npos) << m;
  EXPECT_NE(m.find("on mlx5_0"), std::string::npos) << m;
  EXPECT_NE(m.find("cuMemGetHandleForAddressRange(DMA_BUF_FD)"), std::string::npos) << m;
  EXPECT_NE(m.find("operation not supported (CUresult 801)"), std::string::npos) << m;
  EXPECT_NE(m.find("ibv_reg_mr: Bad address (is the nvidia-peermem module loaded?)"),
            std::string::npos)
      << m;
  // 4. A range reaching outside the allocation's pages (a 1 MiB-rounded cache miss): refused, so
  //    the cache falls back to the request's own pages.
  auto outside =
      regDeviceMemory(nullptr, "mlx5_0", *d, p, eb - (1 << 20), 2 << 20, 7, fakeVerbs(&c3));
  ASSERT_FALSE(outside.isOk());
  EXPECT_NE(outside.status().message().find("outside the pages of its CUDA allocation"),
            std::string::npos);
}

// The transport's registrar with the selection rule: direct on the NIC under the GPU's switch,
// an error saying to stage on a NIC across the CPU, and always with TRELLIS_IB_GDR=off.
TEST_F(FakeCuda, RegistrarFollowsTheTopology) {
  auto sys = std::make_unique<topo::System>(fixture("azure-ndv5-h100.xml"));
  // Make the fake GPU the ND v5's first GPU.
  setBus_("00000001:00:00.0");
  Calls c;
  GdrContext ctx(GdrContext::Mode::kAuto, std::move(sys), TRELLIS_FAKE_CUDA, fakeVerbs(&c));
  const uintptr_t page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  const uintptr_t addr = (kBase + page) & ~(page - 1);

  PdRegistrar near(nullptr, "mlx5_ib0");
  near.enableGpuDirect(&ctx, nicAt("0101:00:00.0", "mlx5_ib0"));
  auto k = near.reg(addr, page);
  ASSERT_TRUE(k.isOk()) << k.status().message();
  EXPECT_EQ(k.value().rkey, 42u);
  EXPECT_EQ(c.dmabuf, 1);

  // A region reaching from host memory into the allocation (a 1 MiB-rounded cache miss): refused.
  auto span = near.reg(addr - 4 * page, 8 * page);
  ASSERT_FALSE(span.isOk());
  EXPECT_NE(span.status().message().find("span host and CUDA device memory"), std::string::npos)
      << span.status().message();
  EXPECT_EQ(c.dmabuf, 1);

  PdRegistrar far(nullptr, "mlx5_ib4");
  far.enableGpuDirect(&ctx, nicAt("0105:00:00.0", "mlx5_ib4"));
  auto f = far.reg(addr, page);
  ASSERT_FALSE(f.isOk());
  EXPECT_EQ(f.status().code(), Code::kInvalidUsage);
  EXPECT_NE(f.status().message().find("is not registered on mlx5_ib4 for GPUDirect RDMA"),
            std::string::npos)
      << f.status().message();
  EXPECT_NE(f.status().message().find("do not share a PCIe switch (path SYS)"), std::string::npos)
      << f.status().message();
  EXPECT_NE(f.status().message().find("stage it through host memory"), std::string::npos);
  EXPECT_EQ(c.dmabuf, 1);  // nothing registered

  setAlloc_(kBase, kSize, 1, 1);  // managed memory: never registered directly
  auto m = near.reg(addr, page);
  ASSERT_FALSE(m.isOk());
  EXPECT_NE(m.status().message().find("CUDA managed memory"), std::string::npos)
      << m.status().message();
  setAlloc_(kBase, kSize, 1, 0);

  GdrContext off(GdrContext::Mode::kOff,
                 std::make_unique<topo::System>(fixture("azure-ndv5-h100.xml")), TRELLIS_FAKE_CUDA,
                 fakeVerbs(&c));
  PdRegistrar nearOff(nullptr, "mlx5_ib0");
  nearOff.enableGpuDirect(&off, nicAt("0101:00:00.0", "mlx5_ib0"));
  auto o = nearOff.reg(addr, page);
  ASSERT_FALSE(o.isOk());
  EXPECT_NE(o.status().message().find("TRELLIS_IB_GDR=off"), std::string::npos)
      << o.status().message();
  EXPECT_EQ(c.dmabuf, 1);
}

}  // namespace
}  // namespace trellis::transport::verbs
