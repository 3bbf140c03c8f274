/** Jemma: a Java inference server for Google's Gemma 4 models. */
package io.jemma;
