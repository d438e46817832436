#!/bin/sh
echo "hello from $APP_VERSION"
