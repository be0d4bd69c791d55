/* Parameters shared by fuzz_hello.c and the corpus generator, so corpus hellos pass the
 * acceptor's checks and reach the proof. */
#ifndef SHOAL_FUZZ_PARAMS_H
#define SHOAL_FUZZ_PARAMS_H
#define FUZZ_KEY "fuzz-key"
#define FUZZ_GROUP "fuzz-group"
#define FUZZ_WORLD 4
#endif
