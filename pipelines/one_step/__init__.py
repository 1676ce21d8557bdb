from genkit.pipelines.one_step.pipeline_one_step import OneStepPipeline, load_one_step, student_timesteps

__all__ = ["OneStepPipeline", "load_one_step", "student_timesteps"]
