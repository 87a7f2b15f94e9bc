/* Watching training: progress bars, metrics logs and plots.
 * Included by tapegrad.h; it can also be included on its own. */
#ifndef TAPEGRAD_TRAIN_H
#define TAPEGRAD_TRAIN_H

#include "tapegrad.h"

#ifdef __cplusplus
extern "C" {
#endif

#ifdef __cplusplus
}
#endif
#endif
