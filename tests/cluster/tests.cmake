# Cluster tests (src/cluster, include/shoal/cluster.h, `shoal run --workers/--listen`,
# `shoal worker`): the plan and wire decoders (unit), the library API with real worker
# processes, and the CLI end to end: output bit-identical to single-process `shoal run` for
# 1-4 local workers and for two network-namespace "hosts", capacities, --layers, an impossible
# plan, weight streaming and its cache, the cluster key, a worker killed mid-generation.
# Label "cluster". About a minute on 2 cores.
set(CLUSTER_TEST_DIR ${CMAKE_CURRENT_LIST_DIR})

shoal_add_test(NAME cluster_unit SOURCES ${CLUSTER_TEST_DIR}/test_plan.c TIMEOUT 30 LABELS cluster)
# The library API; the test binary is its own worker program.
shoal_add_test(NAME cluster_api SOURCES ${CLUSTER_TEST_DIR}/test_api.c TIMEOUT 120 LABELS cluster)


foreach(n 1 2 3 4)
  shoal_add_test(NAME cluster_same_${n}w COMMAND sh ${CLUSTER_TEST_DIR}/test_same.sh ${n} TIMEOUT 180 LABELS cluster)
endforeach()
foreach(t plan weights join kill demo)
  shoal_add_test(NAME cluster_${t} COMMAND sh ${CLUSTER_TEST_DIR}/test_${t}.sh TIMEOUT 180 LABELS cluster)
endforeach()
# Two "hosts" in network namespaces (needs root and `ip netns`; skipped otherwise).
shoal_add_test(NAME cluster_netns COMMAND sh ${CLUSTER_TEST_DIR}/test_netns.sh TIMEOUT 240 LABELS cluster)
set_tests_properties(cluster_netns PROPERTIES SKIP_RETURN_CODE 77)
