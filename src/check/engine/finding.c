/* finding.c: the type name a finding shows (finding.h). */
#include "finding.h"

const char *wref__finding_type_name(const wref__finding *f)
{
    return f->type_name ? f->type_name : wref__type_name(f->object);
}
