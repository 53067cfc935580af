// MPI for the `lepus` command (cli/mpi.h): the only file that includes <mpi.h>.
#include "mpi.h"
#include "progress.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <iostream>
#include <streambuf>

#ifdef LEPUS_HAVE_MPI
#include <mpi.h>
#endif

namespace lepus::cli::mpi {
namespace {

int g_rank = 0, g_size = 1;
bool g_active = false;

// A stream buffer that drops everything: std::cerr of ranks other than 0.
class NullBuffer : public std::streambuf {
 protected:
  int overflow(int c) override { return c == traits_type::eof() ? 0 : c; }
  std::streamsize xsputn(const char*, std::streamsize n) override { return n; }
};
[[maybe_unused]] NullBuffer g_null;
[[maybe_unused]] std::streambuf* g_saved_cerr = nullptr;

[[maybe_unused]] bool LaunchedByMpi() {
  for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK", "PMI_SIZE"})
    if (std::getenv(v) != nullptr) return true;
  return false;
}

}  // namespace

Session::Session([[maybe_unused]] int* argc, [[maybe_unused]] char*** argv) {
#ifdef LEPUS_HAVE_MPI
  if (!LaunchedByMpi()) return;
  int provided = 0;
  // Serialized: MPI is called by one thread at a time, the main thread (toys, scan) or the
  // serial in-order reduce step of a producer's pipeline (a TBB worker; `lepus produce`).
  MPI_Init_thread(argc, argv, MPI_THREAD_SERIALIZED, &provided);
  MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
  MPI_Comm_size(MPI_COMM_WORLD, &g_size);
  if (provided < MPI_THREAD_SERIALIZED) {
    std::fprintf(stderr,
                 "lepus: error: the MPI library provides thread level %d, lepus needs "
                 "MPI_THREAD_SERIALIZED\n",
                 provided);
    MPI_Abort(MPI_COMM_WORLD, 3);
  }
  g_active = true;
  if (g_rank != 0) g_saved_cerr = std::cerr.rdbuf(&g_null);
#endif
}

Session::~Session() {
#ifdef LEPUS_HAVE_MPI
  if (!g_active) return;
  FlushSends();
  if (g_saved_cerr != nullptr) std::cerr.rdbuf(g_saved_cerr);
  MPI_Finalize();
  g_active = false;
#endif
}

bool Built() {
#ifdef LEPUS_HAVE_MPI
  return true;
#else
  return false;
#endif
}
bool Active() { return g_active; }
int Rank() { return g_rank; }
int Size() { return g_size; }

std::string LibraryVersion() {
#ifdef LEPUS_HAVE_MPI
  // Allowed before MPI_Init (MPI 3.0).
  char buf[MPI_MAX_LIBRARY_VERSION_STRING];
  int len = 0;
  MPI_Get_library_version(buf, &len);
  std::string s(buf, static_cast<std::size_t>(len));
  const std::size_t cut = s.find_first_of(",\n");
  if (cut != std::string::npos) s.resize(cut);
  return s;
#else
  return "";
#endif
}

std::pair<int, int> ShareOf(int n, int rank, int size) {
  const int base = n / size, extra = n % size;
  const int begin = rank * base + std::min(rank, extra);
  return {begin, begin + base + (rank < extra ? 1 : 0)};
}
std::pair<int, int> Share(int n) { return ShareOf(n, g_rank, g_size); }

std::vector<std::string> GatherToRoot(const std::string& bytes) {
  if (g_size == 1) return {bytes};
#ifdef LEPUS_HAVE_MPI
  // Sizes first (as 64-bit counts, checked against int for MPI_Gatherv), then the bytes.
  long long mine = static_cast<long long>(bytes.size());
  std::vector<long long> sizes(g_rank == 0 ? g_size : 0);
  MPI_Gather(&mine, 1, MPI_LONG_LONG, sizes.data(), 1, MPI_LONG_LONG, 0, MPI_COMM_WORLD);
  std::vector<int> counts, displs;
  std::string all;
  if (g_rank == 0) {
    long long total = 0;
    for (long long s : sizes) {
      if (total + s > 2147483647LL) {
        std::fprintf(stderr, "lepus: error: the gathered results exceed 2 GiB\n");
        MPI_Abort(MPI_COMM_WORLD, 3);
      }
      displs.push_back(static_cast<int>(total));
      counts.push_back(static_cast<int>(s));
      total += s;
    }
    all.resize(static_cast<std::size_t>(total));
  }
  MPI_Gatherv(bytes.data(), static_cast<int>(bytes.size()), MPI_BYTE, all.data(), counts.data(),
              displs.data(), MPI_BYTE, 0, MPI_COMM_WORLD);
  std::vector<std::string> out;
  if (g_rank == 0)
    for (int r = 0; r < g_size; ++r) out.push_back(all.substr(displs[r], counts[r]));
  return out;
#else
  return {bytes};
#endif
}

#ifdef LEPUS_HAVE_MPI
namespace {
// A send in flight: its bytes (kept alive until delivered) and its requests (size, pieces).
struct PendingSend {
  std::string bytes;
  long long size = 0;
  std::vector<MPI_Request> requests;
};
std::deque<PendingSend> g_sends;

void WaitOldest() {
  PendingSend& p = g_sends.front();
  MPI_Waitall(static_cast<int>(p.requests.size()), p.requests.data(), MPI_STATUSES_IGNORE);
  g_sends.pop_front();
}
}  // namespace
#endif

void SendToRoot([[maybe_unused]] std::string bytes) {
#ifdef LEPUS_HAVE_MPI
  g_sends.emplace_back();
  PendingSend& p = g_sends.back();
  p.bytes = std::move(bytes);
  p.size = static_cast<long long>(p.bytes.size());
  p.requests.emplace_back();
  MPI_Isend(&p.size, 1, MPI_LONG_LONG, 0, 1, MPI_COMM_WORLD, &p.requests.back());
  // In pieces of at most 1 GiB (MPI counts are int). Messages between two ranks with one tag
  // are matched in the order they were sent, so rank 0 receives them in order.
  for (long long off = 0; off < p.size; off += 1LL << 30) {
    const int len = static_cast<int>(std::min<long long>(p.size - off, 1LL << 30));
    p.requests.emplace_back();
    MPI_Isend(p.bytes.data() + off, len, MPI_BYTE, 0, 2, MPI_COMM_WORLD, &p.requests.back());
  }
  while (static_cast<int>(g_sends.size()) > kMaxPendingSends) WaitOldest();
#endif
}

void FlushSends() {
#ifdef LEPUS_HAVE_MPI
  while (!g_sends.empty()) WaitOldest();
#endif
}

std::string ReceiveFrom([[maybe_unused]] int rank) {
  std::string out;
#ifdef LEPUS_HAVE_MPI
  long long n = 0;
  MPI_Recv(&n, 1, MPI_LONG_LONG, rank, 1, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
  out.resize(static_cast<std::size_t>(n));
  for (long long off = 0; off < n; off += 1LL << 30) {
    const int len = static_cast<int>(std::min<long long>(n - off, 1LL << 30));
    MPI_Recv(out.data() + off, len, MPI_BYTE, rank, 2, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
  }
#endif
  return out;
}

std::string CountedReceiver::operator()(int rank) {
  const auto t0 = std::chrono::steady_clock::now();
  std::string bytes = ReceiveFrom(rank);
  seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ++count_;
  bytes_ += static_cast<double>(bytes.size());
  return bytes;
}

std::string CountedReceiver::Summary(const std::string& what) const {
  char seconds[32];
  std::snprintf(seconds, sizeof(seconds), "%.2f", seconds_);
  return "rank 0 received " + std::to_string(count_) + " " + what + " (" + HumanCount(bytes_) +
         "B) from " + std::to_string(g_size - 1) + " rank(s), " + seconds + " s in receives";
}

int ReportError(const std::string& message, int code) {
  if (g_size > 1) {
    // Straight to the file descriptor: std::cerr is silenced on ranks other than 0.
    std::fprintf(stderr, "lepus: error: rank %d of %d: %s\n", g_rank, g_size, message.c_str());
    std::fflush(stderr);
#ifdef LEPUS_HAVE_MPI
    MPI_Abort(MPI_COMM_WORLD, code);
#endif
  }
  std::cerr << "lepus: error: " << message << "\n";
  return code;
}

void Append(std::string* out, const double* v, std::size_t n) {
  out->append(reinterpret_cast<const char*>(v), n * sizeof(double));
}
std::vector<double> ToDoubles(const std::string& bytes) {
  std::vector<double> v(bytes.size() / sizeof(double));
  std::memcpy(v.data(), bytes.data(), v.size() * sizeof(double));
  return v;
}

}  // namespace lepus::cli::mpi
