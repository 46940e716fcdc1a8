# The libFuzzer targets (fuzz/<name>.cc) and where their seeds come from: seed folders under
# fuzz/seeds/<name>, plus files of the shared fixtures when that folder is present.
set(TRELLIS_FUZZERS
  fuzz_tcp_stream fuzz_bootstrap fuzz_unique_id fuzz_cluster_digest
  fuzz_topo_json fuzz_nccl_xml fuzz_hwloc_xml fuzz_smi_matrix
  fuzz_ibnetdiscover fuzz_cluster_file fuzz_hostlist
  fuzz_algo_string fuzz_tune_string fuzz_params)
