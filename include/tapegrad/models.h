/* The model zoo (LeNet-5, AlexNet, VGG, GoogLeNet, ResNet, SE-ResNet) as nn modules with
 * torchvision's names, and the model summary.
 * Included by tapegrad.h; it can also be included on its own. */
#ifndef TAPEGRAD_MODELS_H
#define TAPEGRAD_MODELS_H

#include "tapegrad.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------- the model zoo */

/* ---------------------------------------------------------------- model summary */

#ifdef __cplusplus
}
#endif
#endif
