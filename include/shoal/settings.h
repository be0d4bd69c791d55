/* shoal settings registry: every tunable has one entry with a name, an environment variable,
 * a default and a one-line help. `shoal --help` and docs/settings.md are generated from it. */
#ifndef SHOAL_SETTINGS_H
#define SHOAL_SETTINGS_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct shoal_setting_info {
    const char *name;  /* "timeout" */
    const char *env;   /* "SHOAL_TIMEOUT" */
    const char *type;  /* "seconds", "bytes", "int", "bool", "string" */
    const char *def;   /* default value as text ("" for none) */
    const char *help;  /* one line */
} shoal_setting_info;

/* Number of registered settings; entries are 0..count-1 in a fixed order. */
size_t shoal_settings_count(void);

/* Fills *info for entry i; SHOAL_ERR_INVALID when i is out of range. */
int shoal_setting_get_info(size_t i, shoal_setting_info *info);

/* The effective value of a setting by name: the environment variable if set, else the default.
 * NULL for an unknown name. The pointer is valid until the environment changes. */
const char *shoal_setting_value(const char *name);

#ifdef __cplusplus
}
#endif
#endif
