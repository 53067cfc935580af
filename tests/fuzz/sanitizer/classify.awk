# scripts/sanitize.sh: attributes one replayed fit_input finding to HDF5 or to lepus.
# Reads a sanitizer/libFuzzer report; prints "hdf5" when the first frame of the first stack that
# is not in the sanitizer/libFuzzer runtime, libc, libstdc++ or libgcc is in libhdf5, else "lepus".
/^ *#[0-9]+ 0x[0-9a-f]+ in / || /^ *#[0-9]+ 0x[0-9a-f]+ +\(/ {
  line = $0
  if (line ~ /__interceptor_|__sanitizer|__asan|__lsan|__ubsan|fuzzer::| in malloc | in calloc | in realloc | in free | in operator new| in operator delete|LLVMFuzzer|libc\.so|libstdc\+\+|libgcc_s|__cxa_|__gxx_|__restore_rt|in abort |in raise |std::terminate|__verbose_terminate/) next
  if (line ~ /libhdf5/) { print "hdf5"; found = 1; exit }
  print "lepus"; found = 1; exit
}
END { if (!found) print "lepus" }
