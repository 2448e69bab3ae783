#include "common/failpoint.h"

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <map>
#include <mutex>

namespace vecstore {
namespace failpoint {
namespace {

struct Point {
    Action action = Action::kNone;
    long nth = 0;   // 0 = every hit
    long hits = 0;
};

std::mutex g_mu;
std::map<std::string, Point> g_points;
std::atomic<bool> g_loaded{false};
std::atomic<bool> g_any{false};

void parse(const std::string& spec) {
    g_points.clear();
    size_t start = 0;
    while (start < spec.size()) {
        size_t end = spec.find(',', start);
        if (end == std::string::npos) end = spec.size();
        const std::string item = spec.substr(start, end - start);
        start = end + 1;
        const size_t eq = item.find('=');
        if (eq == std::string::npos) continue;
        Point p;
        std::string action = item.substr(eq + 1);
        const size_t at = action.find('@');
        if (at != std::string::npos) {
            p.nth = std::strtol(action.c_str() + at + 1, nullptr, 10);
            action.resize(at);
        }
        if (action == "kill") {
            p.action = Action::kKill;
        } else if (action == "error") {
            p.action = Action::kError;
        } else {
            continue;
        }
        g_points[item.substr(0, eq)] = p;
    }
    g_any.store(!g_points.empty(), std::memory_order_relaxed);
}

void load_once() {
    if (g_loaded.load(std::memory_order_acquire)) return;
    std::lock_guard<std::mutex> lock(g_mu);
    if (g_loaded.load(std::memory_order_relaxed)) return;
    const char* env = std::getenv("VECSTORE_FAILPOINT");
    parse(env ? env : "");
    g_loaded.store(true, std::memory_order_release);
}

}  // namespace

Action hit(const char* name) {
    load_once();
    if (!g_any.load(std::memory_order_relaxed)) return Action::kNone;
    Action act = Action::kNone;
    {
        std::lock_guard<std::mutex> lock(g_mu);
        auto it = g_points.find(name);
        if (it == g_points.end()) return Action::kNone;
        Point& p = it->second;
        ++p.hits;
        if (p.nth == 0 || p.hits == p.nth) act = p.action;
    }
    if (act == Action::kKill) {
        kill(getpid(), SIGKILL);
        for (;;) pause();  // SIGKILL cannot be caught; wait for it to land
    }
    return act;
}

bool any_configured() {
    load_once();
    return g_any.load(std::memory_order_relaxed);
}

void set_spec(const std::string& spec) {
    std::lock_guard<std::mutex> lock(g_mu);
    parse(spec);
    g_loaded.store(true, std::memory_order_release);
}

}  // namespace failpoint
}  // namespace vecstore
