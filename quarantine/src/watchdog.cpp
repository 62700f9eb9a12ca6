// The watchdog: one thread for every connection of the process. An operation (pg::guarded) arms
// the connections its thread uses with a deadline; one still armed when its deadline passes has
// its socket shut down, so that libpq's blocked poll() returns (a frozen server answers
// nothing, and neither statement_timeout nor TCP keepalives help: the kernel still ACKs), and
// libpqxx throws. Arming and disarming is a mutex and a store; no thread per operation.
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <condition_variable>
#include <mutex>
#include <thread>

#include "pg_util.hpp"

namespace ndrguard::quarantine::pg {

namespace {

using clock = std::chrono::steady_clock;

class watchdog {
public:
    static watchdog& instance() {
        static watchdog* w = new watchdog;  // never destroyed: its thread may outlive main()
        return *w;
    }

    void add(watched_socket* s) {
        std::lock_guard lock(mu_);
        sockets_.push_back(s);
    }
    void remove(watched_socket* s) {
        std::lock_guard lock(mu_);
        sockets_.erase(std::remove(sockets_.begin(), sockets_.end(), s), sockets_.end());
    }
    void use(watched_socket& s) {
        std::lock_guard lock(mu_);
        s.user = std::this_thread::get_id();
    }
    // Arms `s` for operation `op` of this thread; with `if_mine`, only if this thread used it
    // last (not a pooled connection another thread has taken since).
    bool arm(watched_socket& s, clock::time_point deadline, std::uint64_t op, bool if_mine) {
        std::lock_guard lock(mu_);
        if (if_mine && s.user != std::this_thread::get_id()) return false;
        s.deadline = deadline;
        s.armed_by = op;
        if (!started_) {
            started_ = true;
            std::thread([this] { run(); }).detach();
        }
        if (deadline < next_) {
            next_ = deadline;
            wake_.notify_one();
        }
        return true;
    }
    void disarm(watched_socket& s, std::uint64_t op) {
        std::lock_guard lock(mu_);
        if (s.armed_by != op) return;  // armed since by another thread's operation: that one ends it
        s.armed_by = 0;
        s.deadline = clock::time_point::max();  // the thread may wake for it once, and find nothing
    }

private:
    void run() {
        std::unique_lock lock(mu_);
        while (true) {
            const auto now = clock::now();
            next_ = clock::time_point::max();
            for (watched_socket* s : sockets_) {
                if (s->deadline <= now) {
                    s->cut = true;
                    s->deadline = clock::time_point::max();
                    ::shutdown(s->fd, SHUT_RDWR);
                } else {
                    next_ = std::min(next_, s->deadline);
                }
            }
            if (next_ == clock::time_point::max())
                wake_.wait(lock);
            else
                wake_.wait_until(lock, next_);
        }
    }

    std::mutex mu_;
    std::condition_variable wake_;
    std::vector<watched_socket*> sockets_;
    clock::time_point next_ = clock::time_point::max();
    bool started_ = false;
};

// This thread's operation: how deep in nested guarded() calls, the connections it has used
// (armed by every operation: a caller may take `conn` before guarded()), and those armed now.
struct thread_operations {
    int depth = 0;
    std::uint64_t id = 0;  // of the outermost operation under way
    clock::time_point started;
    std::vector<std::weak_ptr<watched_socket>> used;
    std::vector<std::shared_ptr<watched_socket>> armed;
};
thread_local thread_operations current;
std::atomic<std::uint64_t> operations{0};

void arm_in_current(const std::shared_ptr<watched_socket>& s, bool if_mine) {
    if (s->fd < 0 || s->timeout.count() <= 0 || s->cut) return;  // a cut one is dead already
    if (watchdog::instance().arm(*s, current.started + s->timeout, current.id, if_mine)) current.armed.push_back(s);
}

}  // namespace

std::shared_ptr<watched_socket> watch_socket(int fd, std::chrono::milliseconds timeout) {
    auto s = std::make_shared<watched_socket>();
    s->timeout = timeout;
    if (fd >= 0 && timeout.count() > 0) s->fd = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (s->fd >= 0) watchdog::instance().add(s.get());
    return s;
}

void unwatch_socket(watched_socket& s) {
    if (s.fd < 0) return;
    watchdog::instance().remove(&s);
    ::close(s.fd);
    s.fd = -1;
}

operation::operation() {
    if (current.depth++ > 0) return;
    current.started = clock::now();
    current.id = ++operations;
    auto& used = current.used;
    used.erase(std::remove_if(used.begin(), used.end(), [](const auto& w) { return w.expired(); }), used.end());
    for (const auto& w : used)
        if (auto s = w.lock()) arm_in_current(s, true);
}

operation::~operation() {
    if (--current.depth > 0) return;
    for (const auto& s : current.armed) watchdog::instance().disarm(*s, current.id);
    current.armed.clear();
}

bool operation::cut(std::chrono::milliseconds& timeout) const {
    for (const auto& s : current.armed)
        if (s->cut) {
            timeout = s->timeout;
            return true;
        }
    return false;
}

void note_use(const std::shared_ptr<watched_socket>& s) {
    if (s->fd < 0) return;  // not watched
    watchdog::instance().use(*s);
    auto& used = current.used;
    if (std::none_of(used.begin(), used.end(), [&](const auto& w) { return w.lock() == s; })) used.push_back(s);
    if (current.depth > 0 && !used_by_current_operation(*s)) arm_in_current(s, false);
}

bool used_by_current_operation(const watched_socket& s) {
    return std::any_of(current.armed.begin(), current.armed.end(), [&](const auto& a) { return a.get() == &s; });
}

void rethrow_as_database_error(const char* what, const operation& op) {
    using kind = database_error::kind;
    std::chrono::milliseconds timeout{0};
    const bool cut = op.cut(timeout);
    auto fail = [&](kind k, const std::string& detail) -> database_error {
        if (cut)
            return database_error(std::string(what) + ": no answer from PostgreSQL within " + std::to_string(timeout.count()) +
                                      " ms (database_timeout_ms), connection cut",
                                  kind::timeout);
        return database_error(std::string(what) + ": " + detail, k);
    };
    try {
        throw;
    } catch (const database_error& e) {
        if (cut && e.failure != kind::timeout) throw fail(kind::timeout, e.what());
        throw;
    } catch (const pqxx::broken_connection& e) {
        throw fail(kind::connection, e.what());
    } catch (const pqxx::sql_error& e) {
        throw fail(failure_of_sqlstate(e.sqlstate()), e.what());
    } catch (const pqxx::in_doubt_error& e) {
        throw fail(kind::connection, e.what());
    } catch (const pqxx::statement_completion_unknown& e) {
        throw fail(kind::connection, e.what());
    } catch (const std::exception& e) {
        throw fail(kind::request, e.what());
    }
}

}  // namespace ndrguard::quarantine::pg
