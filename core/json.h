/* JSON building that remembers a failed allocation: jansson tells of one only
 * by return values (a NULL value handed to a setter fails the setter), so
 * callers collect it in *bad and write a document whole or not at all. */
#ifndef SHD_JSON_H
#define SHD_JSON_H

#include <jansson.h>

void shd_jset(json_t *o, const char *key, json_t *v, int *bad);
void shd_jpush(json_t *a, json_t *v, int *bad);
/* A JSON string; NULL when out of memory (the setter it goes to then
 * fails) or when s is no UTF-8 (then *bad |= 2). */
json_t *shd_jstr(const char *s, int *bad);

#endif
