# comm core: real processes on loopback, forked by tests/comm/harness.h (label "comm": these
# also run under ThreadSanitizer in CI).
foreach(prog test_p2p test_failure test_split test_intruders test_shm_ref)
  add_executable(${prog} ${CMAKE_CURRENT_LIST_DIR}/${prog}.c)
  target_link_libraries(${prog} PRIVATE shoal)
  target_include_directories(${prog} PRIVATE ${CMAKE_SOURCE_DIR}/src ${CMAKE_SOURCE_DIR}/tests)
endforeach()

# Each transport: auto (shared memory between these local ranks), forced TCP, and a mixed
# group (ranks on two pretend hosts: shared memory within a host, TCP across).
foreach(n 1 2 3 4)
  shoal_add_test(NAME comm_p2p_n${n} COMMAND $<TARGET_FILE:test_p2p> ${n} TIMEOUT 300 LABELS comm)
  shoal_add_test(NAME comm_p2p_tcp_n${n} COMMAND env SHOAL_TRANSPORT=tcp $<TARGET_FILE:test_p2p> ${n}
                 TIMEOUT 300 LABELS comm)
endforeach()
shoal_add_test(NAME comm_p2p_mixed_n4 COMMAND env SHOAL_TEST_HOSTS=2 $<TARGET_FILE:test_p2p> 4
               TIMEOUT 300 LABELS comm)
shoal_add_test(NAME comm_split_mixed_n5 COMMAND env SHOAL_TEST_HOSTS=2 $<TARGET_FILE:test_split> 5
               TIMEOUT 180 LABELS comm)
shoal_add_test(NAME comm_failure_kill_tcp COMMAND env SHOAL_TRANSPORT=tcp $<TARGET_FILE:test_failure> kill
               TIMEOUT 120 LABELS comm)
foreach(mode kill init stall abort nokey)
  shoal_add_test(NAME comm_failure_${mode} COMMAND $<TARGET_FILE:test_failure> ${mode} TIMEOUT 120 LABELS comm)
endforeach()
foreach(n 4 5)
  shoal_add_test(NAME comm_split_n${n} COMMAND $<TARGET_FILE:test_split> ${n} TIMEOUT 180 LABELS comm)
endforeach()
shoal_add_test(NAME comm_intruders COMMAND $<TARGET_FILE:test_intruders> TIMEOUT 120 LABELS comm)

# Same-host single copy (DATA_REF p2p, all-reduce from the peers' buffers), and the same
# traffic over the rings with it switched off.
foreach(n 2 4)
  shoal_add_test(NAME comm_shm_ref_p2p_n${n} COMMAND $<TARGET_FILE:test_shm_ref> p2p ${n} TIMEOUT 180 LABELS comm)
endforeach()
shoal_add_test(NAME comm_shm_ref_p2p_nocma_n2 COMMAND env SHOAL_SHM_CMA=0 $<TARGET_FILE:test_shm_ref> p2p 2
               TIMEOUT 180 LABELS comm)
shoal_add_test(NAME comm_shm_ref_kill_n3 COMMAND $<TARGET_FILE:test_shm_ref> kill 3 TIMEOUT 120 LABELS comm)
# Cooperative copy (the waiting sender writes chunks into the receiver): off gives the same
# bytes; either side dying in the middle leaves the other with PEER_FAILED.
shoal_add_test(NAME comm_shm_ref_p2p_nocoop_n2 COMMAND env SHOAL_SHM_COOP=0 $<TARGET_FILE:test_shm_ref> p2p 2
               TIMEOUT 180 LABELS comm)
foreach(side sender receiver)
  shoal_add_test(NAME comm_shm_ref_coopkill_${side}_n2 COMMAND $<TARGET_FILE:test_shm_ref> coopkill-${side} 2
                 TIMEOUT 120 LABELS comm)
endforeach()
