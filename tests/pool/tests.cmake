# The worker pool: the test binary is its own worker program (label "comm").
add_executable(test_pool ${CMAKE_CURRENT_LIST_DIR}/test_pool.c)
target_link_libraries(test_pool PRIVATE shoal)
target_include_directories(test_pool PRIVATE ${CMAKE_SOURCE_DIR}/src ${CMAKE_SOURCE_DIR}/tests)
shoal_add_test(NAME pool_spawn_8 COMMAND $<TARGET_FILE:test_pool> spawn 8 TIMEOUT 120 LABELS comm)
foreach(mode kill leader join)
  shoal_add_test(NAME pool_${mode} COMMAND $<TARGET_FILE:test_pool> ${mode} TIMEOUT 120 LABELS comm)
endforeach()
