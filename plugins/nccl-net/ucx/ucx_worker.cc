#include "ucx/ucx_worker.h"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <set>

#include "core/plugin_log.h"

namespace trellis::ncclnet::ucxb {

void onSendDone(void* request, ucs_status_t status, void* user) {
  auto* op = static_cast<UcxOp*>(user);
  op->done = true;
  op->status = status;
  op->handle = nullptr;
  op->worker->u->ucp_request_free(request);
  if (op->abandoned) op->worker->reap(op);
}

void onRecvDone(void* request, ucs_status_t status, const ucp_tag_recv_info_t* info, void* user) {
  auto* op = static_cast<UcxOp*>(user);
  op->done = true;
  op->status = status;
  bool sized = status == UCS_OK || status == UCS_ERR_MESSAGE_TRUNCATED;
  op->length = sized && info != nullptr ? info->length : 0;
  op->handle = nullptr;
  op->worker->u->ucp_request_free(request);
  if (op->abandoned) op->worker->reap(op);
}

namespace {

void onEndpointError(void* arg, ucp_ep_h /*ep*/, ucs_status_t status) {
  static_cast<Worker::Endpoint*>(arg)->status = status;
}

// UCX_TLS as a context will use it (UCX_TLS from the environment, or what we set on top).
std::string effectiveTls(const ux::Api* u, const ucp_config_t* config) {
  char* text = nullptr;
  size_t len = 0;
  FILE* f = open_memstream(&text, &len);
  if (f == nullptr) return "all";
  u->ucp_config_print(config, f, nullptr, UCS_CONFIG_PRINT_CONFIG);
  std::fclose(f);
  std::string all(text == nullptr ? "" : text);
  std::free(text);
  size_t at = all.find("UCX_TLS=");
  if (at == std::string::npos || (at > 0 && all[at - 1] != '\n')) return "all";
  at += 8;
  return all.substr(at, all.find('\n', at) - at);
}

// Whether a UCX_TLS list can select posix/sysv shared memory: those transports detect a dead peer
// (UCP_ERR_HANDLING_MODE_PEER) only with MM_ERROR_HANDLING=y, which UCX warns about when unused.
bool mayUseSharedMemory(const std::string& tls) {
  bool exclude = !tls.empty() && tls[0] == '^';
  std::set<std::string> names;
  size_t pos = exclude ? 1 : 0;
  while (pos <= tls.size()) {
    size_t end = std::min(tls.find(',', pos), tls.size());
    std::string name = tls.substr(pos, end - pos);
    names.insert(name.substr(0, name.find(':')));
    pos = end + 1;
  }
  auto has = [&](const char* n) { return names.count(n) != 0; };
  bool anyMm = has("sm") || has("shm") || has("mm") || has("posix") || has("sysv");
  bool allMm = has("sm") || has("shm") || has("mm") || (has("posix") && has("sysv"));
  return exclude ? !allMm : (has("all") || anyMm);
}

}  // namespace

Result<std::unique_ptr<Worker>> Worker::create(const ux::Api* u, const std::string& netDevices,
                                               const std::string& tls) {
  std::unique_ptr<Worker> w(new Worker);
  w->u = u;
  w->netDevices = netDevices;
  ucp_config_t* config = nullptr;
  ucs_status_t st = u->ucp_config_read(nullptr, nullptr, &config);
  if (st != UCS_OK) return internalError("ucp_config_read: %s", u->ucs_status_string(st));
  if (!netDevices.empty() &&
      (st = u->ucp_config_modify(config, "NET_DEVICES", netDevices.c_str())) != UCS_OK) {
    u->ucp_config_release(config);
    return invalidArgument("UCX rejected NET_DEVICES='%s': %s", netDevices.c_str(),
                           u->ucs_status_string(st));
  }
  if (!tls.empty() && (st = u->ucp_config_modify(config, "TLS", tls.c_str())) != UCS_OK) {
    u->ucp_config_release(config);
    return invalidArgument("TRELLIS_UCX_TLS='%s' rejected by UCX: %s", tls.c_str(),
                           u->ucs_status_string(st));
  }
  if (mayUseSharedMemory(effectiveTls(u, config)))
    u->ucp_config_modify(config, "MM_ERROR_HANDLING", "y");
  ucp_params_t params{};
  params.field_mask = UCP_PARAM_FIELD_FEATURES | UCP_PARAM_FIELD_MT_WORKERS_SHARED;
  params.features = UCP_FEATURE_TAG;
  params.mt_workers_shared = 0;
  st = u->ucp_init_version(UCP_API_MAJOR, UCP_API_MINOR, &params, config, &w->context);
  u->ucp_config_release(config);
  if (st != UCS_OK)
    return internalError("ucp_init (UCX %s, NET_DEVICES '%s', TLS '%s'): %s",
                         u->ucp_get_version_string(), netDevices.c_str(),
                         tls.empty() ? "default" : tls.c_str(), u->ucs_status_string(st));
  ucp_worker_params_t wp{};
  wp.field_mask = UCP_WORKER_PARAM_FIELD_THREAD_MODE;
  wp.thread_mode = UCS_THREAD_MODE_SERIALIZED;
  st = u->ucp_worker_create(w->context, &wp, &w->worker);
  if (st != UCS_OK) return internalError("ucp_worker_create: %s", u->ucs_status_string(st));
  ucp_address_t* addr = nullptr;
  size_t len = 0;
  st = u->ucp_worker_get_address(w->worker, &addr, &len);
  if (st != UCS_OK) return internalError("ucp_worker_get_address: %s", u->ucs_status_string(st));
  w->address.assign(reinterpret_cast<const uint8_t*>(addr),
                    reinterpret_cast<const uint8_t*>(addr) + len);
  u->ucp_worker_release_address(w->worker, addr);
  return w;
}

Worker::~Worker() {
  if (worker != nullptr) {
    std::lock_guard<std::mutex> lock(mu);
    if (!live_.empty())
      NCCLNET_INFO(nccl_abi::kFlagNet, "ucx worker (%s) destroyed with %zu comm(s) open",
                   netDevices.c_str(), live_.size());
    // Force-close the endpoints (that completes what UCX still holds on them), then the worker.
    std::vector<void*> closing;
    for (auto& [addr, e] : eps_) retired_.push_back(std::move(e));
    for (auto& e : retired_) {
      ucp_request_param_t prm{};
      prm.op_attr_mask = UCP_OP_ATTR_FIELD_FLAGS;
      prm.flags = UCP_EP_CLOSE_FLAG_FORCE;
      void* r = u->ucp_ep_close_nbx(e->ep, &prm);
      if (UCS_PTR_IS_PTR(r)) closing.push_back(r);
    }
    auto until = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    for (void* r : closing) {
      while (u->ucp_request_check_status(r) == UCS_INPROGRESS &&
             std::chrono::steady_clock::now() < until)
        u->ucp_worker_progress(worker);
      u->ucp_request_free(r);
    }
    u->ucp_worker_destroy(worker);
    for (UcxOp* op : abandoned_) delete op;  // UCX calls nothing back after the worker is gone
  }
  if (context != nullptr) u->ucp_cleanup(context);
}

Result<Worker::Endpoint*> Worker::endpointTo(const uint8_t* address, size_t len) {
  std::string key(reinterpret_cast<const char*>(address), len);
  auto it = eps_.find(key);
  if (it != eps_.end()) {
    if (it->second->status == UCS_OK) return it->second.get();
    // A failed endpoint stays (comms that used it report its status); new comms get a fresh one.
    retired_.push_back(std::move(it->second));
    eps_.erase(it);
  }
  auto e = std::make_unique<Endpoint>();
  ucp_ep_params_t ep{};
  ep.field_mask = UCP_EP_PARAM_FIELD_REMOTE_ADDRESS | UCP_EP_PARAM_FIELD_ERR_HANDLING_MODE |
                  UCP_EP_PARAM_FIELD_ERR_HANDLER;
  ep.address = reinterpret_cast<const ucp_address_t*>(address);
  ep.err_mode = UCP_ERR_HANDLING_MODE_PEER;
  ep.err_handler.cb = onEndpointError;
  ep.err_handler.arg = e.get();
  ucs_status_t st = u->ucp_ep_create(worker, &ep, &e->ep);
  if (st != UCS_OK) return remoteError("ucp_ep_create: %s", u->ucs_status_string(st));
  Endpoint* raw = e.get();
  eps_.emplace(std::move(key), std::move(e));
  return raw;
}

void Worker::abandon(UcxOp* op) {
  op->abandoned = true;
  op->worker = this;
  abandoned_.insert(op);
}

void Worker::reap(UcxOp* op) {
  abandoned_.erase(op);
  delete op;
}

bool Worker::flush(double seconds) {
  ucp_request_param_t prm{};
  void* r = u->ucp_worker_flush_nbx(worker, &prm);
  if (!UCS_PTR_IS_PTR(r)) return true;
  auto until = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  ucs_status_t st;
  while ((st = u->ucp_request_check_status(r)) == UCS_INPROGRESS &&
         std::chrono::steady_clock::now() < until)
    u->ucp_worker_progress(worker);
  u->ucp_request_free(r);  // an unfinished flush is released when UCX completes it
  return st != UCS_INPROGRESS;
}

uint32_t Worker::allocComm() {
  if (live_.size() >= kMaxComm) return 0;
  // Ids are not reused until the counter wraps: a message a closed comm left unreceived cannot
  // match a new comm.
  while (next_ == 0 || live_.count(next_) != 0) next_ = (next_ + 1) & kMaxComm;
  uint32_t id = next_;
  next_ = (next_ + 1) & kMaxComm;
  live_.insert(id);
  return id;
}

void Worker::freeComm(uint32_t id) { live_.erase(id); }

bool Worker::drain(int rounds) {
  bool any = false;
  for (int i = 0; i < rounds && u->ucp_worker_progress(worker) != 0; ++i) any = true;
  return any;
}

}  // namespace trellis::ncclnet::ucxb
