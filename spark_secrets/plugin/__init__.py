"""The JVM refresher plugin: its jar."""
