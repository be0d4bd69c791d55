/* The model commands of the shoal tool (cmd_run.c, cmd_inspect.c, cmd_genmodel.c), in the
 * cli_command style of cli.h. */
#ifndef SHOAL_CLI_MODEL_H
#define SHOAL_CLI_MODEL_H

#include <stdio.h>

int cmd_run(int argc, char **argv);
void cmd_run_help(FILE *out);
int cmd_inspect(int argc, char **argv);
void cmd_inspect_help(FILE *out);
int cmd_genmodel(int argc, char **argv);
void cmd_genmodel_help(FILE *out);

#endif
