"""airspeed velocity benchmarks for eigarray (see ``asv_bench/asv.conf.json``)."""
