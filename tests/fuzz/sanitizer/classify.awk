# scripts/sanitize.sh: attributes one replayed fuzz finding. Prints "hdf5" when the first stack
# frame outside the sanitizer runtime, libFuzzer, libc, libstdc++ and libgcc is in libhdf5,
# "lepus" when it is anywhere else, "none" when the replay printed no stack (did not reproduce).
/^ *#[0-9]+ 0x[0-9a-f]+ / {
  line = $0
  if (line ~ /__interceptor_|__sanitizer|__asan|__lsan|__ubsan|fuzzer::| in malloc | in calloc | in realloc | in free | in operator new| in operator delete|LLVMFuzzer|libc\.so|libstdc\+\+|libgcc_s|sysdeps\/|__cxa_|__gxx_|__restore_rt| in abort | in raise |std::terminate|__verbose_terminate/) next
  print (line ~ /libhdf5/) ? "hdf5" : "lepus"
  found = 1
  exit
}
END { if (!found) print "none" }
