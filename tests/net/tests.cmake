# Unit tests of src/net/ (sockets, frames, handshake, shared-memory rings) and the rendezvous store (src/comm/store*),
# all over loopback inside one process. Names start with net_ so `ctest -R net` selects them.
shoal_add_test(NAME net_frame SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_frame.c TIMEOUT 30 LABELS net)
shoal_add_test(NAME net_handshake SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_handshake.c TIMEOUT 60 LABELS net)
shoal_add_test(NAME net_store SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_store.c TIMEOUT 60 LABELS net)
shoal_add_test(NAME net_shm_ring SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_shm_ring.c TIMEOUT 60 LABELS net)
