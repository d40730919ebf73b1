// deploy/ against the real thing (fixture model block_l4_r2, `blockserve
// up` with two workers):
// - every metric name that deploy/prometheus, deploy/grafana and
//   deploy/k8s use is exported by the running services (or defined by a
//   recording rule, or by the Prometheus Adapter rule);
// - a real Prometheus (Debian package `prometheus`) runs
//   deploy/prometheus/prometheus-local.yml (1 s intervals) with the rules,
//   scrapes the stack through the target files `up --prometheus-targets`
//   writes, and every recording rule yields finite values while requests
//   run; every rule evaluates without error; when `blockserve scale` adds a
//   worker, Prometheus scrapes it without a reload;
// - every service answers the liveness health service the Kubernetes
//   probes ask for.
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "gmock/gmock.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "gtest/gtest.h"
#include "services/common/server_runner.h"
#include "tests/integration/stack_util.h"
#include "tests/integration/up_process.h"

namespace blockserve::testing {
namespace {

namespace fs = std::filesystem;

const char kModel[] = "block_l4_r2";

fs::path RepoRoot() { return fs::path(BLOCKSERVE_TEST_DATA_DIR) / ".." / ".."; }

std::string ReadText(const fs::path& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// A temporary directory removed with the object.
class TempDir {
 public:
  TempDir() {
    char name[] = "/tmp/blockserve-observability-XXXXXX";
    path_ = mkdtemp(name);
  }
  ~TempDir() {
    std::error_code error;
    fs::remove_all(path_, error);
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

// Clients sending Generate calls back to back until destroyed.
class Load {
 public:
  Load(const std::string& gateway, int clients) {
    for (int c = 0; c < clients; ++c) {
      threads_.emplace_back([this, gateway, c] {
        auto stub = v1::Generation::NewStub(
            grpc::CreateChannel(gateway, grpc::InsecureChannelCredentials()));
        for (int i = 0; !stop_.load(); ++i) {
          v1::GenerateRequest request = TokenRequest({1 + c, 2 + i % 40}, 24);
          request.set_ignore_eos(true);
          if (Generate(*stub, request, 30).status.ok()) {
            ok_.fetch_add(1);
          } else {
            failed_.fetch_add(1);
          }
          // Keep the machine usable for Prometheus and the services.
          std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
      });
    }
  }
  ~Load() {
    stop_.store(true);
    for (std::thread& t : threads_) t.join();
  }
  int ok() const { return ok_.load(); }
  int failed() const { return failed_.load(); }

 private:
  std::atomic<bool> stop_{false};
  std::atomic<int> ok_{0};
  std::atomic<int> failed_{0};
  std::vector<std::thread> threads_;
};

// Metric names in a text exposition: sample names and # TYPE families.
std::set<std::string> ExportedNames(const std::string& exposition) {
  std::set<std::string> names;
  std::istringstream text(exposition);
  std::string line;
  while (std::getline(text, line)) {
    if (line.rfind("# TYPE ", 0) == 0) {
      names.insert(line.substr(7, line.find(' ', 7) - 7));
    } else if (!line.empty() && line[0] != '#') {
      names.insert(line.substr(0, line.find_first_of("{ ")));
    }
  }
  return names;
}

// deploy/ files that name metrics: Prometheus config and rules, Grafana
// dashboards, Kubernetes manifests (autoscaling queries).
std::vector<fs::path> DeployFiles() {
  std::vector<fs::path> files;
  for (const auto& entry : fs::recursive_directory_iterator(RepoRoot() / "deploy")) {
    const std::string ext = entry.path().extension().string();
    if (entry.is_regular_file() && (ext == ".yml" || ext == ".yaml" || ext == ".json")) {
      files.push_back(entry.path());
    }
  }
  return files;
}

std::set<std::string> Matches(const std::string& text, const std::regex& pattern, int group = 0) {
  std::set<std::string> out;
  for (std::sregex_iterator it(text.begin(), text.end(), pattern), end; it != end; ++it) {
    out.insert((*it)[group]);
  }
  return out;
}

absl::StatusOr<std::unique_ptr<UpProcess>> StartStack(const std::vector<std::string>& extra = {}) {
  std::vector<std::string> args = {"--model=" + TestModelDir(kModel), "--workers=2",
                                   "--grace-period=5"};
  args.insert(args.end(), extra.begin(), extra.end());
  return UpProcess::Start(args);
}

TEST(ObservabilityTest, EveryMetricNameInDeployIsExportedOrDefined) {
  auto up = StartStack();
  ASSERT_TRUE(up.ok()) << up.status();
  // Labelled families appear once they have a series: finish some requests.
  auto client = (*up)->Client();
  for (int i = 0; i < 3; ++i) {
    v1::GenerateRequest request = TokenRequest({1, 2, 3}, 12);
    ASSERT_TRUE(Generate(*client, request).status.ok());
  }
  std::set<std::string> exported;
  for (const char* role : {"gateway", "context", "worker"}) {
    for (const std::string& url : (*up)->MetricsUrls(role)) {
      const std::set<std::string> names = ExportedNames(HttpGet(url));
      ASSERT_FALSE(names.empty()) << "nothing scraped from " << url;
      exported.insert(names.begin(), names.end());
    }
  }

  // Names defined by recording rules and by the Prometheus Adapter rule.
  std::set<std::string> recorded;
  for (const auto& entry : fs::directory_iterator(RepoRoot() / "deploy/prometheus/rules")) {
    const auto names = Matches(ReadText(entry.path()), std::regex(R"(record:\s*(\S+))"), 1);
    recorded.insert(names.begin(), names.end());
  }
  ASSERT_GE(recorded.size(), 10u);
  const std::set<std::string> adapter =
      Matches(ReadText(RepoRoot() / "deploy/k8s/autoscaling/prometheus-adapter-values.yaml"),
              std::regex(R"re(as:\s*"([A-Za-z0-9_:]+)")re"), 1);
  ASSERT_FALSE(adapter.empty());

  const std::regex raw(R"(\bblockserve_[a-z0-9_]+)");
  const std::regex rule(R"(\bblockserve:[A-Za-z0-9_:]+)");
  int checked = 0;
  for (const fs::path& file : DeployFiles()) {
    const std::string text = ReadText(file);
    const std::string where = fs::relative(file, RepoRoot()).string();
    for (const std::string& name : Matches(text, raw)) {
      EXPECT_TRUE(exported.count(name) > 0 || adapter.count(name) > 0)
          << where << " uses " << name << ", which no Blockserve service exports";
      ++checked;
    }
    for (const std::string& name : Matches(text, rule)) {
      EXPECT_TRUE(recorded.count(name) > 0)
          << where << " uses " << name << ", which no recording rule defines";
      ++checked;
    }
  }
  EXPECT_GE(checked, 60);
  // The dashboard covers every recording rule.
  const std::string dashboard = ReadText(RepoRoot() / "deploy/grafana/blockserve-dashboard.json");
  for (const std::string& name : recorded) {
    EXPECT_NE(dashboard.find(name), std::string::npos) << "the dashboard does not show " << name;
  }
}

TEST(ObservabilityTest, EveryServiceAnswersTheLivenessHealthService) {
  auto up = StartStack();
  ASSERT_TRUE(up.ok()) << up.status();
  const nlohmann::json state_now = (*up)->State();
  for (const auto& service : state_now["services"]) {
    auto stub = grpc::health::v1::Health::NewStub(grpc::CreateChannel(
        service["address"].get<std::string>(), grpc::InsecureChannelCredentials()));
    for (const std::string& name : {std::string(), std::string(services::kLivenessHealthService)}) {
      grpc::ClientContext context;
      context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
      grpc::health::v1::HealthCheckRequest request;
      request.set_service(name);
      grpc::health::v1::HealthCheckResponse response;
      ASSERT_TRUE(stub->Check(&context, request, &response).ok()) << service["name"] << " " << name;
      EXPECT_EQ(response.status(), grpc::health::v1::HealthCheckResponse::SERVING)
          << service["name"] << " '" << name << "'";
    }
  }
}

// A Prometheus server process, killed and reaped with the object.
class PrometheusServer {
 public:
  ~PrometheusServer() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }
  bool Start(const std::string& binary, const fs::path& dir) {
    port_ = FreePort();
    const std::vector<std::string> args = {
        binary, "--config.file=" + (dir / "prometheus.yml").string(),
        "--storage.tsdb.path=" + (dir / "data").string(),
        absl::StrCat("--web.listen-address=127.0.0.1:", port_), "--log.level=warn"};
    const std::string log = (dir / "prometheus.log").string();
    const pid_t parent = getpid();
    pid_ = fork();
    if (pid_ == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (getppid() != parent) _exit(1);
      const int out = open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      if (out >= 0) {
        dup2(out, STDOUT_FILENO);
        dup2(out, STDERR_FILENO);
      }
      std::vector<char*> argv;
      for (const std::string& arg : args) argv.push_back(const_cast<char*>(arg.c_str()));
      argv.push_back(nullptr);
      execv(binary.c_str(), argv.data());
      _exit(127);
    }
    return pid_ > 0 &&
           Eventually([&] { return HttpGet(Url("/-/ready")).find("Ready") != std::string::npos; },
                      30);
  }
  std::string Url(const std::string& path) const {
    return absl::StrCat("http://127.0.0.1:", port_, path);
  }
  // GET /api/v1/...; the `data` member, or null.
  nlohmann::json Api(const std::string& path_and_query) const {
    nlohmann::json body = nlohmann::json::parse(HttpGet(Url("/api/v1/" + path_and_query)), nullptr,
                                                /*allow_exceptions=*/false);
    if (!body.is_object() || body.value("status", "") != "success") return nullptr;
    return body["data"];
  }
  // An instant query's samples: labels and value.
  std::vector<std::pair<nlohmann::json, double>> Query(const std::string& promql) const {
    std::vector<std::pair<nlohmann::json, double>> out;
    const nlohmann::json data = Api("query?query=" + UrlEncode(promql));
    if (!data.is_object() || data["resultType"] != "vector") return out;
    for (const auto& sample : data["result"]) {
      out.emplace_back(sample["metric"], std::stod(sample["value"][1].get<std::string>()));
    }
    return out;
  }

 private:
  static int FreePort() {
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
    socklen_t length = sizeof(addr);
    getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &length);
    close(fd);
    return ntohs(addr.sin_port);
  }
  static std::string UrlEncode(const std::string& text) {
    std::string out;
    for (unsigned char c : text) {
      if (std::isalnum(c) || c == '_' || c == '-' || c == '.' || c == '~') {
        out += static_cast<char>(c);
      } else {
        out += absl::StrCat("%", absl::Hex(c, absl::kZeroPad2));
      }
    }
    return out;
  }

  pid_t pid_ = -1;
  int port_ = 0;
};

std::string FindPrometheus() {
  for (const char* dir : {"/usr/bin", "/usr/local/bin", "/bin"}) {
    const fs::path path = fs::path(dir) / "prometheus";
    if (access(path.c_str(), X_OK) == 0) return path;
  }
  return "";
}

TEST(ObservabilityTest, PrometheusScrapesTheStackAndEveryRecordingRuleHasValues) {
  const std::string prometheus = FindPrometheus();
  if (prometheus.empty()) {
    const char* allow = std::getenv("BLOCKSERVE_ALLOW_MISSING_TOOLS");
    if (allow != nullptr && std::string(allow) == "1") {
      GTEST_SKIP() << "prometheus not installed (tools/setup.sh installs the Debian package)";
    }
    FAIL() << "prometheus not installed: run tools/setup.sh (Debian package prometheus)";
  }
  // deploy/prometheus/prometheus-local.yml as shipped, with 1 s intervals.
  TempDir dir;
  std::string config = ReadText(RepoRoot() / "deploy/prometheus/prometheus-local.yml");
  const std::string original = config;
  config = absl::StrReplaceAll(config, {{"scrape_interval: 5s", "scrape_interval: 1s"},
                                        {"scrape_timeout: 4s", "scrape_timeout: 1s"},
                                        {"evaluation_interval: 5s", "evaluation_interval: 1s"},
                                        {"refresh_interval: 5s", "refresh_interval: 1s"}});
  ASSERT_NE(config, original) << "prometheus-local.yml no longer has the expected intervals";
  std::ofstream(dir.path() / "prometheus.yml") << config;
  fs::copy(RepoRoot() / "deploy/prometheus/rules", dir.path() / "rules");

  auto up = StartStack({"--prometheus-targets=" + (dir.path() / "targets").string()});
  ASSERT_TRUE(up.ok()) << up.status();
  PrometheusServer server;
  ASSERT_TRUE(server.Start(prometheus, dir.path()))
      << "prometheus did not start: " << ReadText(dir.path() / "prometheus.log");
  Load load((*up)->gateway(), 3);

  // Every target discovered from the files and up.
  auto targets_up = [&](int expected) {
    const nlohmann::json data = server.Api("targets?state=active");
    if (!data.is_object()) return false;
    int up_count = 0;
    for (const auto& target : data["activeTargets"]) up_count += target["health"] == "up";
    return up_count == expected && static_cast<int>(data["activeTargets"].size()) == expected;
  };
  ASSERT_TRUE(Eventually([&] { return targets_up(4); }, 30))
      << server.Api("targets?state=active").dump();

  // The rules Prometheus loaded: ours, all healthy.
  std::set<std::string> records;
  const nlohmann::json rules = server.Api("rules");
  ASSERT_TRUE(rules.is_object());
  for (const auto& group : rules["groups"]) {
    for (const auto& rule : group["rules"]) {
      if (rule["type"] == "recording") records.insert(rule["name"].get<std::string>());
    }
  }
  ASSERT_GE(records.size(), 12u);

  // Each recording rule yields finite values once a few scrapes and
  // requests went by.
  std::map<std::string, std::string> missing;
  const bool all = Eventually(
      [&] {
        missing.clear();
        for (const std::string& record : records) {
          const auto samples = server.Query(record);
          if (samples.empty()) missing[record] = "no series";
          for (const auto& [labels, value] : samples) {
            if (!std::isfinite(value)) missing[record] = labels.dump() + " is not finite";
          }
        }
        return missing.empty() && load.ok() > 0;
      },
      45);
  std::string missing_text;
  for (const auto& [record, why] : missing) absl::StrAppend(&missing_text, record, ": ", why, "\n");
  EXPECT_TRUE(all) << missing_text;

  // Spot checks of meaning.
  auto value = [&](const std::string& promql) {
    const auto samples = server.Query(promql);
    return samples.size() == 1 ? samples[0].second : std::nan("");
  };
  EXPECT_EQ(value("blockserve:workers_up:count"), 2);
  EXPECT_GT(value("blockserve:gateway_generated_tokens:rate1m"), 0);
  EXPECT_EQ(value("blockserve:gateway_generate_errors:ratio_rate5m"), 0);
  EXPECT_EQ(server.Query("blockserve:worker_load_blocks").size(), 2u);
  for (const auto& [labels, ratio] :
       server.Query("blockserve:context_kv_cache_utilization:ratio")) {
    EXPECT_GE(ratio, 0);
    EXPECT_LE(ratio, 1);
  }
  EXPECT_EQ(
      server.Query("blockserve:gateway_time_to_first_token_seconds:histogram_quantile_1m").size(),
      3u);

  // Every rule (alerts included) evaluates without error; the stack is
  // healthy, so the availability alerts stay quiet.
  const nlohmann::json evaluated = server.Api("rules");
  for (const auto& group : evaluated["groups"]) {
    for (const auto& rule : group["rules"]) {
      EXPECT_EQ(rule["health"], "ok") << rule["name"] << ": " << rule.value("lastError", "");
      if (rule["type"] == "alerting" &&
          (rule["name"] == "BlockserveServiceDown" || rule["name"] == "BlockserveNoWorkers" ||
           rule["name"] == "BlockserveHighErrorRate" ||
           rule["name"] == "BlockserveNoReadyWorkers")) {
        EXPECT_EQ(rule["state"], "inactive") << rule["name"];
      }
    }
  }

  // A worker added with `blockserve scale` is scraped without a reload.
  ChildGuard scale({"scale", "--up-file=" + (*up)->port_file(), "--workers=3"});
  ASSERT_EQ(scale.WaitExit(60), 0);
  EXPECT_TRUE(Eventually([&] { return targets_up(5); }, 30))
      << server.Api("targets?state=active").dump();
  EXPECT_TRUE(Eventually([&] { return value("blockserve:workers_up:count") == 3; }, 30));
  EXPECT_EQ(load.failed(), 0);
}

}  // namespace
}  // namespace blockserve::testing
