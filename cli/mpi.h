// MPI for the `lepus` command (docs/scaling.md): the only place that knows about MPI. Built with
// MPI when CMake finds it (LEPUS_HAVE_MPI in mpi.cc only); without it, or when the command is not
// launched by mpirun / srun, every function here describes a single process (rank 0 of 1) and no
// MPI call is made, so a plain `lepus ...` runs exactly as in a build without MPI.
//
// Distributed commands split their work into items fixed by the input. toys / scan: toys by
// index, scan points by grid index, a contiguous share per rank (Share), the per-item results
// gathered to rank 0 in item order (GatherToRoot). produce: the producer's work items round
// robin, each item's partial histograms sent to rank 0 (SendToRoot / ReceiveFrom), which adds
// them in item order. Rank 0 writes the outputs; the results are those of one process, bit for
// bit. A rank that fails prints its message and aborts the job (ReportError): no rank writes a
// partial output.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace lepus::cli::mpi {

// Initialises MPI when the process was started by an MPI launcher (mpirun / mpiexec / srun with
// PMI/PMIx: OMPI_COMM_WORLD_SIZE, PMIX_RANK or PMI_RANK in the environment) and MPI is built in;
// finalises it on destruction. On ranks other than 0, std::cerr is silenced (rank 0 reports for
// the job); errors go through ReportErrorAndExit.
class Session {
 public:
  Session(int* argc, char*** argv);
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;
};

bool Built();   // compiled with MPI
bool Active();  // MPI initialised (launched by mpirun), possibly with a single rank
int Rank();     // 0 without MPI
int Size();     // 1 without MPI
inline bool Root() { return Rank() == 0; }
// "Open MPI v4.1.4" (the library's version string up to the first comma); "" without MPI.
std::string LibraryVersion();

// The contiguous share [begin, end) of n items of this rank: balanced, in rank order (rank 0
// first, so rank 0 holds item 0 whenever n > 0).
std::pair<int, int> Share(int n);
std::pair<int, int> ShareOf(int n, int rank, int size);

// Every rank's bytes to rank 0, in rank order (rank 0: Size() strings; other ranks: empty).
std::vector<std::string> GatherToRoot(const std::string& bytes);

// Point to point, in order (the size first, then the bytes): a rank's bytes to rank 0, and rank
// 0's receive of the next bytes of `rank`. For the producers' partial histograms and the J/psi
// calibration's selected events. SendToRoot returns at once (MPI_Isend; it keeps the bytes until
// they are delivered), waiting only while more than kMaxPendingSends sends are still in flight,
// so a rank does not stop filling while rank 0 is busy; FlushSends waits for all of them (call
// it before the rank finishes).
inline constexpr int kMaxPendingSends = 2;
void SendToRoot(std::string bytes);
void FlushSends();
std::string ReceiveFrom(int rank);

// rank 0's receive of other ranks' bytes (ReceiveFrom), counted and timed for the summary line
// of a distributed event loop: "rank 0 received 17 partial histogram sets (50.8MB) from 1
// rank(s), 0.02 s in receives".
class CountedReceiver {
 public:
  std::string operator()(int rank);
  std::string Summary(const std::string& what) const;  // what: e.g. "partial histogram sets"

 private:
  long long count_ = 0;
  double bytes_ = 0.0, seconds_ = 0.0;
};

// Prints "lepus: error: MESSAGE" (with the rank when Size() > 1) on stderr and ends the process
// with `code`: through MPI_Abort when Size() > 1, so that every rank stops; otherwise returns
// `code` for main to return.
int ReportError(const std::string& message, int code);

// Packing of doubles and ints for GatherToRoot.
void Append(std::string* out, const double* v, std::size_t n);
std::vector<double> ToDoubles(const std::string& bytes);

}  // namespace lepus::cli::mpi
