# rpc and health: real processes on loopback, forked by tests/comm/harness.h (label "comm":
# these also run under ThreadSanitizer in CI).
foreach(prog test_rpc test_health)
  add_executable(${prog} ${CMAKE_CURRENT_LIST_DIR}/${prog}.c)
  target_link_libraries(${prog} PRIVATE shoal)
  target_include_directories(${prog} PRIVATE ${CMAKE_SOURCE_DIR}/src ${CMAKE_SOURCE_DIR}/tests)
endforeach()
shoal_add_test(NAME rpc_calls_n4 COMMAND $<TARGET_FILE:test_rpc> 4 TIMEOUT 300 LABELS comm)
shoal_add_test(NAME rpc_calls_n1 COMMAND $<TARGET_FILE:test_rpc> 1 TIMEOUT 120 LABELS comm)
shoal_add_test(NAME rpc_health_kill COMMAND $<TARGET_FILE:test_health> kill TIMEOUT 120 LABELS comm)
shoal_add_test(NAME rpc_health_stop COMMAND $<TARGET_FILE:test_health> stop TIMEOUT 120 LABELS comm)
