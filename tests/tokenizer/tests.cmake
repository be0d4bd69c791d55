# Tokenizer tests (src/model/tokenizer): llama.cpp's vocabulary test vectors, round trips, the
# llama2.c tokenizer, API contracts, and the fuzz targets of the tokenizer file parsers.
set(TOK_TEST_DIR ${CMAKE_CURRENT_LIST_DIR})

add_executable(test_tok_llamacpp ${TOK_TEST_DIR}/test_tok_llamacpp.c)
target_link_libraries(test_tok_llamacpp PRIVATE shoal)
target_include_directories(test_tok_llamacpp PRIVATE ${CMAKE_SOURCE_DIR}/src ${CMAKE_SOURCE_DIR})
foreach(c gpt2 llama3 qwen2 llama2-json llama2-model llama2-gguf spm-vocab-gguf gpt2-vocab-gguf)
  shoal_add_test(NAME tok_llamacpp_${c} COMMAND $<TARGET_FILE:test_tok_llamacpp> ${c} TIMEOUT 60
                 LABELS tokenizer)
endforeach()

add_executable(test_tok_roundtrip ${TOK_TEST_DIR}/test_tok_roundtrip.c)
target_link_libraries(test_tok_roundtrip PRIVATE shoal)
target_include_directories(test_tok_roundtrip PRIVATE ${CMAKE_SOURCE_DIR}/src ${CMAKE_SOURCE_DIR})
foreach(v gpt2 llama3 qwen2 llama2-json llama2-model llama2-gguf tok512)
  shoal_add_test(NAME tok_roundtrip_${v} COMMAND $<TARGET_FILE:test_tok_roundtrip> ${v} TIMEOUT 60
                 LABELS tokenizer)
endforeach()

# Unicode normalization: committed vectors from Python's unicodedata, plus Unicode's
# NormalizationTest.txt when /usr/share/unicode has it (skipped with a message otherwise)
add_executable(test_tok_normalize ${TOK_TEST_DIR}/test_tok_normalize.c)
target_link_libraries(test_tok_normalize PRIVATE shoal)
target_include_directories(test_tok_normalize PRIVATE ${CMAKE_SOURCE_DIR}/src ${CMAKE_SOURCE_DIR})
shoal_add_test(NAME tok_normalize COMMAND $<TARGET_FILE:test_tok_normalize>
               ${TOK_TEST_DIR}/normalization_vectors.txt /usr/share/unicode TIMEOUT 120 LABELS tokenizer)

# pre-tokenizer rules on representative strings (hand-worked expectations), names, StarCoder,
# and random text split by the real regexes (pretok_vectors.txt, Python's `regex` module)
shoal_add_test(NAME tok_pretok SOURCES ${TOK_TEST_DIR}/test_tok_pretok.c
               COMMAND $<TARGET_FILE:tok_pretok> ${TOK_TEST_DIR}/pretok_vectors.txt TIMEOUT 60 LABELS tokenizer)
target_include_directories(tok_pretok PRIVATE ${CMAKE_SOURCE_DIR})

shoal_add_test(NAME tok_api SOURCES ${TOK_TEST_DIR}/test_tok_api.c TIMEOUT 60 LABELS tokenizer)
target_include_directories(tok_api PRIVATE ${CMAKE_SOURCE_DIR})

add_executable(test_tok_synth ${TOK_TEST_DIR}/test_tok_synth.c)
target_link_libraries(test_tok_synth PRIVATE shoal)
target_include_directories(test_tok_synth PRIVATE ${CMAKE_SOURCE_DIR}/src ${CMAKE_SOURCE_DIR})
foreach(f gguf hfjson)
  foreach(v gpt2 llama3 qwen2)
    shoal_add_test(NAME tok_synth_${f}_${v} COMMAND $<TARGET_FILE:test_tok_synth> ${f} ${v} TIMEOUT 60
                   LABELS tokenizer)
  endforeach()
endforeach()

include(${CMAKE_SOURCE_DIR}/fuzz/tokenizer/CMakeLists.txt)
