# Model engine tests (src/model, tools/shoal/cmd_run.c, cmd_inspect.c, cmd_genmodel.c): kernels
# against the scalar reference, the JSON parser, formats + quantization with generated models,
# bad files, the forward pass against testdata's reference outputs, and the CLI. The fuzz
# targets of the model parsers are in fuzz/model/. All together well under a minute.
set(MODEL_TEST_DIR ${CMAKE_CURRENT_LIST_DIR})

shoal_add_test(NAME model_json SOURCES ${MODEL_TEST_DIR}/test_json.c TIMEOUT 30 LABELS model)
shoal_add_test(NAME model_kernels SOURCES ${MODEL_TEST_DIR}/test_kernels.c TIMEOUT 30 LABELS model)
shoal_add_test(NAME model_formats SOURCES ${MODEL_TEST_DIR}/test_formats.c TIMEOUT 120 LABELS model)

add_executable(test_model_reference ${MODEL_TEST_DIR}/test_reference.c)
target_link_libraries(test_model_reference PRIVATE shoal)
target_include_directories(test_model_reference PRIVATE ${CMAKE_SOURCE_DIR}/src ${CMAKE_SOURCE_DIR}/tests)
foreach(m stories260K-hf tiny-llama tiny-qwen3 tiny-llama-bf16)
  shoal_add_test(NAME model_ref_hf_${m} COMMAND $<TARGET_FILE:test_model_reference> hf ${m} TIMEOUT 60 LABELS model)
endforeach()
foreach(m tiny-llama tiny-qwen3)
  shoal_add_test(NAME model_ref_split_${m} COMMAND $<TARGET_FILE:test_model_reference> split ${m} TIMEOUT 60 LABELS model)
endforeach()
shoal_add_test(NAME model_ref_stories COMMAND $<TARGET_FILE:test_model_reference> stories TIMEOUT 60 LABELS model)
shoal_add_test(NAME model_ref_gguf COMMAND $<TARGET_FILE:test_model_reference> gguf TIMEOUT 60 LABELS model)
# The same forward pass on the portable kernels (and AVX2 where the CPU has AVX-512).
shoal_add_test(NAME model_ref_hf_tiny-qwen3_scalar COMMAND ${CMAKE_COMMAND} -E env SHOAL_CPU_ISA=scalar
               $<TARGET_FILE:test_model_reference> hf tiny-qwen3 TIMEOUT 60 LABELS model)
shoal_add_test(NAME model_ref_hf_tiny-llama_1thread COMMAND ${CMAKE_COMMAND} -E env SHOAL_THREADS=1
               $<TARGET_FILE:test_model_reference> hf tiny-llama TIMEOUT 60 LABELS model)

# CLI: `shoal run` golden text (llama2.c and HF folder), ids, logits dump, inspect, genmodel.
shoal_add_test(NAME model_cli COMMAND sh ${MODEL_TEST_DIR}/test_cli.sh TIMEOUT 120 LABELS model)

include(${CMAKE_SOURCE_DIR}/fuzz/model/CMakeLists.txt)
