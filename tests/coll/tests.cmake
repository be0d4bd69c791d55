# Collectives (src/comm/coll): the kernel unit test, and the full matrix of every collective
# against a serial reference under `shoal launch` for several group sizes and each algorithm
# setting (SHOAL_ALGO auto, ring, rd). SHOAL_TEST_QUICK=1 (sanitizer CI) shrinks the large
# counts and skips the 64 MiB case. SHOAL_TIMEOUT=120: a stuck collective fails with an error
# naming the silent ranks long before the test's own timeout. Group tests carry the label
# "comm" (the TSan build runs those) besides "coll".
set(COLL_TEST_DIR ${CMAKE_CURRENT_LIST_DIR})

shoal_add_test(NAME test_reduce_kernels SOURCES ${COLL_TEST_DIR}/test_reduce_kernels.c
  LABELS coll)

add_executable(test_coll_matrix ${COLL_TEST_DIR}/test_coll_matrix.c)
target_link_libraries(test_coll_matrix PRIVATE shoal)
target_include_directories(test_coll_matrix PRIVATE ${CMAKE_SOURCE_DIR}/src ${CMAKE_SOURCE_DIR}/tests)

foreach(algo auto ring rd)
  foreach(n 1 2 3 4 5 8)
    shoal_add_test(NAME test_coll_matrix_n${n}_${algo} TIMEOUT 900 LABELS "coll;comm"
      COMMAND $<TARGET_FILE:shoal_cli> launch -n ${n} --timeout 850 --env SHOAL_ALGO=${algo}
              --env SHOAL_TIMEOUT=120 -- $<TARGET_FILE:test_coll_matrix>)
  endforeach()
endforeach()

# Frames limited to 16 KiB over TCP (peers drop longer ones): every collective must split its
# messages into pieces (quick matrix, with whole-buffer RD messages and with auto).
foreach(algo auto rd)
  shoal_add_test(NAME test_coll_matrix_n3_frames16k_${algo} TIMEOUT 600 LABELS "coll;comm"
    COMMAND $<TARGET_FILE:shoal_cli> launch -n 3 --timeout 550 --env SHOAL_ALGO=${algo}
            --env SHOAL_MAX_MESSAGE=16K --env SHOAL_TRANSPORT=tcp --env SHOAL_TEST_QUICK=1
            --env SHOAL_TIMEOUT=120 -- $<TARGET_FILE:test_coll_matrix>)
endforeach()

# One 64 MiB f32 allreduce over 4 ranks (a no-op under SHOAL_TEST_QUICK).
shoal_add_test(NAME test_coll_big_n4 TIMEOUT 600 LABELS "coll;comm"
  COMMAND $<TARGET_FILE:shoal_cli> launch -n 4 --timeout 550 --env SHOAL_TIMEOUT=120
          -- $<TARGET_FILE:test_coll_matrix> --big)
