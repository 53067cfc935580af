# Strict numeric arguments and configuration values (issue 10): every case must fail before any
# work, with exit code 1 and "<flag> is <value>, but must be <constraint>" (cli/args.h), or the
# file and JSON key path. Included from tests/cli/CMakeLists.txt (lepus_cli_error, ${work}).
set(args_input ${conf}/sym_poi_dense.hdf5)
set(args_out ${work}/args)
set(u64_max 18446744073709551615)

# Counts: negative (CLI11 alone would wrap -5 to 2^64 - 5), zero, overflow, not a number.
lepus_cli_error(args.generate_events_negative
                "lepus: error: --events is -5, but must be a positive integer$"
                generate -p wmunu -n -5 -o ${args_out}/e.h5)
lepus_cli_error(args.generate_events_zero "lepus: error: --events is 0, but must be a positive integer"
                generate -p wmunu -n 0 -o ${args_out}/e.h5)
lepus_cli_error(args.generate_events_overflow
                "lepus: error: --events is 18446744073709551616, but must be a positive integer"
                generate -p wmunu -n 18446744073709551616 -o ${args_out}/e.h5)
lepus_cli_error(args.generate_events_text "lepus: error: --events is 'ten', but must be a positive integer"
                generate -p wmunu -n ten -o ${args_out}/e.h5)
lepus_cli_error(args.generate_events_fraction "lepus: error: --events is 1.5, but must be a positive integer"
                generate -p wmunu -n 1.5 -o ${args_out}/e.h5)
lepus_cli_error(args.generate_batch_zero "lepus: error: --batch is 0, but must be an integer in \\[1, 67108864\\]"
                generate -p wmunu -n 10 --batch 0 -o ${args_out}/e.h5)
lepus_cli_error(args.generate_min_muons "lepus: error: --min-muons is 3, but must be an integer in \\[0, 2\\]"
                generate -p wmunu -n 10 --min-muons 3 -o ${args_out}/e.h5)
lepus_cli_error(args.generate_threads_negative
                "lepus: error: --threads is -1, but must be an integer in \\[0, 4096\\]"
                generate -p wmunu -n 10 --threads -1 -o ${args_out}/e.h5)
lepus_cli_error(args.toys_ntoys_overflow
                "lepus: error: --ntoys is 3000000000, but must be an integer in \\[1, 2147483647\\]"
                toys ${args_input} -n 3000000000)
lepus_cli_error(args.fit_max_iter_negative
                "lepus: error: --max-iter is -1, but must be an integer in \\[1, 1000000\\]"
                fit ${args_input} --max-iter -1)
lepus_cli_error(args.fit_threads_text "lepus: error: --threads is '2x', but must be an integer in \\[0, 4096\\]"
                fit ${args_input} --threads 2x)
lepus_cli_error(args.fit_impacts_top_negative
                "lepus: error: --impacts-top is -3, but must be an integer in \\[0, 1000000\\]"
                fit ${args_input} --impacts --impacts-top -3)
lepus_cli_error(args.scan_max_iter_zero "lepus: error: --max-iter is 0, but must be an integer in \\[1, 1000000\\]"
                scan ${args_input} --param sig --max-iter 0)
lepus_cli_error(args.scan2d_points_too_many
                "lepus: error: --points is 5000, but must be at most 1000 with --param2 \\(5000 x 5000 profile fits\\)"
                scan ${args_input} --param sig --param2 syst0 --points 5000)
lepus_cli_error(args.produce_generate_negative
                "lepus: error: --generate is -5, but must be an integer in \\[1, 1000000000000\\]"
                produce wmass --generate -5 -o ${args_out}/p.h5)
lepus_cli_error(args.produce_dilepton_threads "lepus: error: --threads is 5000, but must be an integer in \\[0, 4096\\]"
                produce dilepton --threads 5000 -o ${args_out}/p.h5)
lepus_cli_error(args.calibrate_generate_negative
                "lepus: error: --generate is -5, but must be an integer in \\[1, 1000000000000\\]"
                calibrate jpsi --light -n -5 -o ${args_out}/c.json)
lepus_cli_error(args.calibrate_eta_bins_negative
                "lepus: error: --eta-bins is -4, but must be an integer in \\[1, 48\\]"
                calibrate jpsi --eta-bins -4 -o ${args_out}/c.json)
lepus_cli_error(args.demo_events_negative
                "lepus: error: --events is -5, but must be an integer in \\[1000, 1099511627776\\]"
                demo --events -5 --outdir ${args_out}/demo)
lepus_cli_error(args.bench_repeat_zero "lepus: error: --repeat is 0, but must be an integer in \\[1, 100\\]"
                bench --repeat 0)
lepus_cli_error(args.bench_regions_huge
                "lepus: error: --large-regions is 2147483647, but must be an integer in \\[1, 100000\\]"
                bench --suite large --large-regions 2147483647)

# Absurd counts: estimates of memory (toys) and disk (generate) refused before any work (the
# output in a directory that exists at configure time: the output-path check comes first).
lepus_cli_error(args.toys_memory_estimate
                "lepus: error: --ntoys is 2000000000, but the per-toy results .* would need about .* more than the .* of available memory \\(MemAvailable\\) \\(--no-resource-check skips this check\\)"
                toys ${args_input} -n 2000000000)
lepus_cli_error(args.generate_disk_estimate
                "lepus: error: --events is ${u64_max}, but the event file of .* generated events would need about .* free on the filesystem of .*/e\\.h5 \\(--no-resource-check skips this check\\)"
                generate -p wmunu -n ${u64_max} -o ${CMAKE_CURRENT_BINARY_DIR}/e.h5)
lepus_cli_error(args.generate_data_lumi_estimate
                "lepus: error: --lumi is 1e\\+12, but the event file of .* generated events would need about"
                generate -p wmunu --data --lumi 1e12 -o ${CMAKE_CURRENT_BINARY_DIR}/e.h5)

# Seeds: the full unsigned 64-bit range or an error (no clamping, no wrapping).
lepus_cli_error(args.generate_seed_negative
                "lepus: error: --seed is -1, but must be an unsigned 64-bit integer \\(0 to 18446744073709551615\\)"
                generate -p wmunu -n 10 --seed -1 -o ${args_out}/e.h5)
lepus_cli_error(args.generate_seed_overflow
                "lepus: error: --seed is 18446744073709551616, but must be an unsigned 64-bit integer"
                generate -p wmunu -n 10 --seed 18446744073709551616 -o ${args_out}/e.h5)
lepus_cli_error(args.toys_seed_negative "lepus: error: --seed is -1, but must be an unsigned 64-bit integer"
                toys ${args_input} -n 5 --seed -1)
lepus_cli_error(args.toys_seed_text "lepus: error: --seed is 'abc', but must be an unsigned 64-bit integer"
                toys ${args_input} -n 5 --seed abc)
lepus_cli_error(args.produce_seed_negative "lepus: error: --seed is -1, but must be an unsigned 64-bit integer"
                produce wmass --seed -1 -o ${args_out}/p.h5)
lepus_cli_error(args.produce_wlike_seed_float "lepus: error: --seed is 1e3, but must be an unsigned 64-bit integer"
                produce wlike --seed 1e3 -o ${args_out}/p.h5)
lepus_cli_error(args.calibrate_seed_negative "lepus: error: --seed is -7, but must be an unsigned 64-bit integer"
                calibrate jpsi --light --seed -7 -o ${args_out}/c.json)
lepus_cli_error(args.demo_seed_high
                "lepus: error: --seed is 9223372036854775808, but must be an integer in \\[0, 9223372036854775807\\]"
                demo --seed 9223372036854775808 --outdir ${args_out}/demo)

# Physics parameters: non-finite, negative, out of range.
lepus_cli_error(args.generate_mw_shift_nan "lepus: error: --truth-mw-shift is nan, but must be a finite number$"
                generate -p wmunu -n 10 --truth-mw-shift nan -o ${args_out}/e.h5)
lepus_cli_error(args.generate_lumi_inf "lepus: error: --lumi is inf, but must be a finite number > 0"
                generate -p wmunu -n 10 --lumi inf -o ${args_out}/e.h5)
lepus_cli_error(args.generate_lumi_negative "lepus: error: --lumi is -1, but must be a finite number > 0"
                generate -p wmunu -n 10 --lumi -1 -o ${args_out}/e.h5)
lepus_cli_error(args.generate_min_pt_overflow "lepus: error: --min-pt is 1e400, but must be a finite number >= 0"
                generate -p wmunu -n 10 --min-pt 1e400 -o ${args_out}/e.h5)
lepus_cli_error(args.generate_nonprompt_zero
                "lepus: error: --truth-nonprompt-factor is 0, but must be a finite number > 0"
                generate -p wmunu -n 10 --truth-nonprompt-factor 0 -o ${args_out}/e.h5)
lepus_cli_error(args.produce_luminosity_negative
                "lepus: error: --luminosity is -1, but must be a finite number > 0"
                produce wmass --luminosity -1 -o ${args_out}/p.h5)
lepus_cli_error(args.produce_data_mw_shift_nan
                "lepus: error: --data-truth-mw-shift is nan, but must be a finite number"
                produce wmass --data-truth-mw-shift nan -o ${args_out}/p.h5)
lepus_cli_error(args.produce_wlike_mz_shift_inf
                "lepus: error: --data-truth-mz-shift is -inf, but must be a finite number"
                produce wlike --data-truth-mz-shift -inf -o ${args_out}/p.h5)
lepus_cli_error(args.produce_helicity_prior_width
                "lepus: error: --prior-width is 0, but must be a finite number > 0"
                produce helicity --prior-width 0 -o ${args_out}/p.h5)
lepus_cli_error(args.calibrate_sim_factor_inf
                "lepus: error: --sim-factor is inf, but must be a finite number in \\(0, 100.$"
                calibrate jpsi --light --sim-factor inf -o ${args_out}/c.json)
lepus_cli_error(args.calibrate_pt_edges_nan "lepus: error: --pt-edges is nan, but must be a finite number in \\[0, 10000\\]"
                calibrate jpsi --light --pt-edges 6,nan -o ${args_out}/c.json)
lepus_cli_error(args.zclosure_lep_mev_nan "lepus: error: --lep-mev is nan, but must be a finite number in \\[0, 999\\]"
                calibrate zclosure -c ${args_out}/c.json --lep-mev nan -o ${args_out}/z.json)
lepus_cli_error(args.demo_luminosity_inf "lepus: error: --luminosity is inf, but must be a finite number in \\[1, 1e\\+06\\]"
                demo --luminosity inf --outdir ${args_out}/demo)
lepus_cli_error(args.fit_edm_tol_zero "lepus: error: --edm-tol is 0, but must be a finite number > 0"
                fit ${args_input} --edm-tol 0)
lepus_cli_error(args.toys_edm_tol_nan "lepus: error: --edm-tol is nan, but must be a finite number > 0"
                toys ${args_input} -n 5 --edm-tol nan)
lepus_cli_error(args.fit_set_nan "lepus: error: --set syst0 is 'nan', but must be a finite number"
                fit ${args_input} --set syst0=nan)
lepus_cli_error(args.fit_set_overflow "lepus: error: --set syst0 is '1e400', but must be a finite number"
                fit ${args_input} --set syst0=1e400)
lepus_cli_error(args.fit_prior_scale_inf
                "lepus: error: --prior-scale syst0: the factor is 'inf', but must be a finite number"
                fit ${args_input} --prior-scale syst0=inf)
lepus_cli_error(args.scan_range_nan "lepus: error: --range is nan, but must be a finite number$"
                scan ${args_input} --param sig --range nan 1)
lepus_cli_error(args.scan_sigma_inf "lepus: error: --sigma is inf, but must be a finite number > 0"
                scan ${args_input} --param sig --sigma inf)
lepus_cli_error(args.scan_cl_one "lepus: error: --cl is 1, but must be a finite number in \\(0, 1\\)"
                scan ${args_input} --param sig --cl 1)
lepus_cli_error(args.bench_max_seconds_nan "lepus: error: --max-seconds is nan, but must be a finite number > 0"
                bench --max-seconds nan)

# Configuration files: the file and the JSON key path.
lepus_cli_error(args.config_number_overflow
                "lepus: error: .*inf_number\\.json: a number is beyond the range of a double \\(at most 1\\.8e308 in magnitude\\): .*number overflow parsing '1e400'"
                produce wmass --config ${dir}/args/inf_number.json -o ${args_out}/p.h5)
lepus_cli_error(args.config_seed_negative
                "lepus: error: .*negative_seed\\.json: simulation\\.seed is -1 \\(integer\\), but must be a non-negative integer"
                produce wmass --config ${dir}/args/negative_seed.json -o ${args_out}/p.h5)

# Seeds >= 2^63 are used and recorded bit for bit (generate event files, toys JSON and HDF5).
find_program(LEPUS_H5DUMP_ARGS h5dump)
if(LEPUS_JQ AND LEPUS_H5DUMP_ARGS)
  lepus_cli_test(args.seeds ${dir}/seeds_test.sh ${lepus_exe} ${args_input} ${work}/seeds)
endif()
