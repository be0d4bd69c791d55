# Launcher tests: the library API (shoal/launch.h), the shoal command line, and one comm
# program started three ways (shoal launch, mpirun, torchrun-style variables). Tests that form
# a group carry the label "comm" (the TSan build runs those).
set(LAUNCH_DIR ${CMAKE_CURRENT_LIST_DIR})

# Helper programs run by the tests (not tests themselves).
add_executable(launch_child ${LAUNCH_DIR}/launch_child.c)
add_executable(launch_env_program ${LAUNCH_DIR}/env_program.c)
target_link_libraries(launch_env_program PRIVATE shoal)

shoal_add_test(NAME launch_api SOURCES ${LAUNCH_DIR}/test_launch_api.c
  COMMAND $<TARGET_FILE:launch_api> $<TARGET_FILE:launch_child>)

shoal_add_test(NAME launch_cli
  COMMAND bash ${LAUNCH_DIR}/test_launch_cli.sh $<TARGET_FILE:shoal_cli> $<TARGET_FILE:launch_child>)
shoal_add_test(NAME tool_settings_doc
  COMMAND bash ${LAUNCH_DIR}/test_settings_doc.sh $<TARGET_FILE:shoal_cli> ${CMAKE_SOURCE_DIR})

# The same program, three starters.
shoal_add_test(NAME launch_env_shoal LABELS comm
  COMMAND $<TARGET_FILE:shoal_cli> launch -n 4 --timeout 100 -- $<TARGET_FILE:launch_env_program>)
shoal_add_test(NAME launch_env_torchrun LABELS comm
  COMMAND bash ${LAUNCH_DIR}/run_torchrun_style.sh $<TARGET_FILE:launch_env_program> 4)
if(SHOAL_MPI)
  shoal_add_test(NAME launch_env_mpirun LABELS comm
    COMMAND bash ${LAUNCH_DIR}/run_mpirun.sh $<TARGET_FILE:launch_env_program> 4)
  set_tests_properties(launch_env_mpirun PROPERTIES SKIP_RETURN_CODE 77)
endif()

# The tools on top of the launcher: the benchmark checks every collective against a serial
# reference; the demo is what `make run` shows.
shoal_add_test(NAME tool_bench_coll LABELS comm TIMEOUT 300
  COMMAND bash ${LAUNCH_DIR}/test_bench_coll.sh $<TARGET_FILE:shoal_cli>)
shoal_add_test(NAME example_allreduce_demo LABELS comm
  COMMAND $<TARGET_FILE:shoal_cli> launch -n 4 --timeout 100 -- $<TARGET_FILE:allreduce_demo>)
