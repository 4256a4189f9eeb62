#include "quantd/server/server.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <memory>
#include <thread>

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "quantd/core/base/atomic_file.h"
#include "quantd/server/auth.h"
#include "quantd/server/blob_store.h"
#include "quantd/server/clock.h"
#include "quantd/server/crash_record.h"
#include "quantd/server/executor.h"
#include "quantd/server/ids.h"
#include "quantd/server/job_journal.h"
#include "quantd/server/job_runner.h"
#include "quantd/server/job_store.h"
#include "quantd/server/postgres_job_store.h"
#include "quantd/server/rpc_interceptor.h"
#include "quantd/server/service.h"
#include "quantd/server/upload_store.h"
#include "quantd/server/upload_streams.h"
#include "quantd/server/worker_pool.h"

#include <prometheus/exposer.h>
#include <prometheus/registry.h>

#include "quantd/server/metrics.h"

namespace quantd::server {

absl::Status RunServer(const ServeConfig& config, const std::string& version, Logger* logger) {
  // Termination signals are taken synchronously by this thread (sigwait);
  // block them before any thread starts so every thread inherits the mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  SystemClock clock;
  BlobStoreOptions blob_options;
  blob_options.root = config.data_dir;
  blob_options.max_store_bytes = config.max_store_bytes;
  blob_options.min_free_bytes = config.min_free_bytes;
  auto blobs = BlobStore::Open(blob_options);
  if (!blobs.ok()) return blobs.status();
  UploadStoreOptions upload_options;
  upload_options.max_upload_bytes = config.max_upload_bytes;
  auto uploads = UploadStore::Open(blobs->get(), upload_options, &clock);
  if (!uploads.ok()) return uploads.status();
  {
    const UploadRecovery& r = (*uploads)->recovery();
    logger->Info("uploads recovered", {{"resumable", absl::StrCat(r.resumable)},
                                       {"reserved_bytes", absl::StrCat((*blobs)->reserved_bytes())},
                                       {"orphans_removed", absl::StrCat(r.orphans_removed)},
                                       {"commits_finished", absl::StrCat(r.commits_finished)},
                                       {"commits_undone", absl::StrCat(r.commits_undone)},
                                       {"dropped_for_room", absl::StrCat(r.dropped_for_room)}});
  }

  // The job store: the embedded journal (one server per data directory) or
  // PostgreSQL shared by replicas on one shared data directory.
  const bool shared = config.job_store != "sqlite";
  std::unique_ptr<SqliteJobJournal> journal;
  std::unique_ptr<JobStore> job_store;
  PostgresJobStore* postgres = nullptr;
  if (!shared) {
    // One server per data directory: the journal and the worker pool assume
    // they are alone. The lock dies with the process (also on kill -9).
    const std::string lock_path = config.data_dir + "/quantd.lock";
    int lock_fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (lock_fd < 0 || ::flock(lock_fd, LOCK_EX | LOCK_NB) != 0) {
      return absl::FailedPreconditionError(
          absl::StrCat("another quantd is using --data-dir ", config.data_dir, " (", lock_path,
                       " is locked); stop it or pick another directory"));
    }
    auto opened = SqliteJobJournal::Open(config.data_dir + "/quantd.db");
    if (!opened.ok()) return opened.status();
    journal = *std::move(opened);
    job_store = std::make_unique<EmbeddedJobStore>(journal.get(), &clock);
  } else {
    PostgresJobStoreOptions pg_options;
    pg_options.dsn = config.job_store;
    pg_options.max_connections = 2 * config.workers + 12;
    auto opened = PostgresJobStore::Open(pg_options, &clock);
    if (!opened.ok()) return opened.status();
    postgres = opened->get();
    job_store = *std::move(opened);
  }
  JobStore& jobs = *job_store;
  // This replica's name in leases and reservations: unique per process.
  char host[256] = {0};
  ::gethostname(host, sizeof(host) - 1);
  const std::string replica = absl::StrCat(host, ":", ::getpid(), ":", RandomHex(4));
  // Reservations of open uploads live as long as a job lease unless renewed
  // (every third of it, in the loop at the end): a replica that dies frees
  // its uploads as soon as its jobs.
  const absl::Duration lease =
      absl::Milliseconds(static_cast<int64_t>(config.lease_seconds * 1000));
  const absl::Duration upload_reservation_ttl = lease;
  const absl::Duration upload_sweep_period = absl::Minutes(10);
  if (postgres != nullptr) {
    (*uploads)->UseReservations(postgres, replica, upload_reservation_ttl);
  }
  // What the previous process recorded if a fault killed it, and which jobs
  // it charges (crash_record.h). Embedded store only: a shared directory's
  // replicas recover each other's jobs through leases.
  const std::string crash_path = config.data_dir + "/crash.record";
  const CrashRecord crash = shared ? CrashRecord() : ReadCrashRecord(crash_path);
  if (crash.signal != 0) {
    logger->Error("the previous server process died of a fault",
                  {{"signal", absl::StrCat(crash.signal)},
                   {"faulting_job", crash.faulting_job},
                   {"running_jobs", absl::StrCat(crash.running.size())}});
  }
  std::vector<std::string> requeued;
  std::vector<std::string> quarantined;
  if (absl::Status st = jobs.Recover(crash, &requeued, &quarantined); !st.ok()) return st;
  if (!shared) RemoveCrashRecord(crash_path);
  for (const std::string& id : requeued) {
    logger->Warning("job was running when the server stopped; requeued", {{"job_id", id}});
  }
  for (const std::string& id : quarantined) {
    logger->Error("job quarantined: it repeatedly stopped the server", {{"job_id", id}});
  }
  if (!shared) {
    // A shared directory holds other replicas' work in progress: only a
    // server that owns the directory clears it.
    (*blobs)->CleanupAfterRestart([&jobs](const std::string& id) { return jobs.IsSucceeded(id); });
  }
  const int64_t upload_ttl_ms = static_cast<int64_t>(config.upload_ttl_hours * 3600 * 1000);
  (*uploads)->ExpireUploads(upload_ttl_ms, upload_sweep_period);

  std::unique_ptr<Authenticator> auth = std::make_unique<Authenticator>();
  if (!config.auth_tokens.empty()) {
    auto a = Authenticator::FromTokensFile(config.auth_tokens);
    if (!a.ok()) return a.status();
    auth = *std::move(a);
  }
  auto creds = MakeServerCredentials(config);
  if (!creds.ok()) return creds.status();

  // Metrics: always kept (cheap), exposed only on --metrics-listen.
  auto registry = std::make_shared<prometheus::Registry>();
  // One compute budget for all running jobs; see worker_pool.h for how it
  // is shared out.
  const int thread_budget =
      config.max_job_threads > 0
          ? config.max_job_threads
          : std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  const int workers = std::min(config.workers, thread_budget);
  Metrics metrics(registry.get(), workers, version);
  std::unique_ptr<prometheus::Exposer> exposer;
  if (!config.metrics_listen.empty()) {
    try {
      exposer = std::make_unique<prometheus::Exposer>(config.metrics_listen);
    } catch (const std::exception& e) {
      return absl::InvalidArgumentError(
          absl::StrCat("--metrics-listen ", config.metrics_listen, ": ", e.what()));
    }
    exposer->RegisterCollectable(registry);
  }
  metrics.SetStoreBytes((*blobs)->used_bytes(), (*blobs)->FreeDiskBytes());

  auto crash_recorder = CrashRecorder::Install(crash_path, workers);
  if (!crash_recorder.ok()) return crash_recorder.status();
  CoreJobRunner runner(blobs->get());
  WorkerPool pool(
      workers, thread_budget, &jobs,
      [&runner](const v1::Job& job, const core::RunContext& ctx) { return runner.Run(job, ctx); },
      &clock, logger, &metrics);
  if (postgres != nullptr) {
    pool.UseSharedQueue(postgres, replica, lease);
  } else {
    // Crash attribution is per server process on its own directory; with
    // leases, replicas recover each other's jobs instead.
    pool.SetCrashRecorder(crash_recorder->get());
  }
  pool.Start();

  std::atomic<bool> draining{false};
  ThreadPoolExecutor io(4);  // outlives the gRPC server (declared before it)
  ServiceContext ctx;
  ctx.blobs = blobs->get();
  ctx.uploads = uploads->get();
  ctx.jobs = &jobs;
  ctx.pool = &pool;
  ctx.auth = auth.get();
  ctx.metrics = &metrics;
  ctx.logger = logger;
  ctx.clock = &clock;
  ctx.io = &io;
  ctx.version = version;
  ctx.max_queued_jobs = config.max_queued_jobs;
  ctx.chunk_bytes = config.chunk_bytes;
  ctx.draining = &draining;
  UploadStreams upload_streams(config.max_concurrent_uploads, config.upload_idle_seconds, &clock);
  ctx.upload_streams = &upload_streams;
  QuantdService service(ctx);

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(config.listen, *creds, &port);
  builder.RegisterService(&service);
  builder.SetMaxReceiveMessageSize(config.max_message_bytes);
  builder.SetMaxSendMessageSize(config.max_message_bytes);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, config.keepalive_seconds * 1000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 20000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 10000);
  // Large transfers: let HTTP/2 flow control run ahead of the reader.
  builder.AddChannelArgument(GRPC_ARG_HTTP2_STREAM_LOOKAHEAD_BYTES, 8 << 20);
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> interceptors;
  interceptors.push_back(std::make_unique<RpcMetricsInterceptorFactory>(&metrics, logger, &clock));
  builder.experimental().SetInterceptorCreators(std::move(interceptors));
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || port == 0) {
    pool.Shutdown(absl::ZeroDuration());
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", config.listen, " (address in use or invalid)"));
  }
  server->GetHealthCheckService()->SetServingStatus(true);
  if (!config.port_file.empty()) {
    std::string text = absl::StrCat(port, "\n");
    absl::Status st = core::WriteFileAtomically(
        config.port_file,
        absl::Span<const uint8_t>(reinterpret_cast<const uint8_t*>(text.data()), text.size()));
    if (!st.ok()) logger->Error("cannot write --port-file", {{"error", st.ToString()}});
  }
  logger->Info("serving", {{"listen", config.listen},
                           {"port", absl::StrCat(port)},
                           {"data_dir", config.data_dir},
                           {"workers", absl::StrCat(workers)},
                           {"job_store", shared ? "postgres" : "sqlite"},
                           {"replica", replica},
                           {"thread_budget", absl::StrCat(thread_budget)},
                           {"tls", config.tls_cert.empty()        ? "off"
                                   : config.tls_client_ca.empty() ? "on"
                                                                  : "mutual"},
                           {"auth", auth->enabled() ? "tokens" : "off"},
                           {"metrics", config.metrics_listen},
                           {"requeued_jobs", absl::StrCat(requeued.size())},
                           {"version", version}});

  // Wait for SIGTERM/SIGINT; meanwhile cancel idle upload streams every
  // second (and renew upload reservations with the shared store, every third
  // of a lease at most), refresh the storage gauges every five seconds and
  // expire old uploads every ten minutes.
  int signo = 0;
  const absl::Duration period = postgres != nullptr
                                    ? std::min(absl::Seconds(1), upload_reservation_ttl / 3)
                                    : absl::Seconds(1);
  const timespec timeout = absl::ToTimespec(period);
  absl::Time next_gauges = absl::Now();
  absl::Time next_expiry = absl::Now() + absl::Minutes(10);
  for (;;) {
    siginfo_t info;
    signo = sigtimedwait(&signals, &info, &timeout);
    if (signo > 0) break;
    if (postgres != nullptr) {
      absl::Status st = postgres->RenewUploadReservations(replica, upload_reservation_ttl);
      if (!st.ok()) logger->Warning("cannot renew upload reservations", {{"error", st.ToString()}});
    }
    if (int n = upload_streams.CancelIdle(); n > 0) {
      logger->Info("cancelled idle upload streams", {{"count", absl::StrCat(n)}});
    }
    const absl::Time now = absl::Now();
    if (now >= next_expiry) {
      next_expiry = now + absl::Minutes(10);
      int n = (*uploads)->ExpireUploads(upload_ttl_ms, upload_sweep_period);
      if (n > 0) logger->Info("expired old uploads", {{"count", absl::StrCat(n)}});
    }
    if (now >= next_gauges) {
      next_gauges = now + absl::Seconds(5);
      metrics.SetStoreBytes((*blobs)->used_bytes(), (*blobs)->FreeDiskBytes());
    }
  }

  logger->Info("draining", {{"signal", strsignal(signo)},
                            {"grace_seconds", absl::StrCat(config.shutdown_grace_seconds)}});
  draining = true;
  server->GetHealthCheckService()->SetServingStatus(false);
  pool.Shutdown(absl::Seconds(config.shutdown_grace_seconds));
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  server->Wait();
  logger->Info("stopped");
  return absl::OkStatus();
}

}  // namespace quantd::server
