package dev.weir.javaclient;

import java.lang.annotation.ElementType;
import java.lang.annotation.Retention;
import java.lang.annotation.RetentionPolicy;
import java.lang.annotation.Target;
import org.junit.jupiter.api.extension.ConditionEvaluationResult;
import org.junit.jupiter.api.extension.ExecutionCondition;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.extension.ExtensionContext;

/**
 * A test of Kafka's behaviour that Weir does not have yet: skipped against Weir with the reason
 * (reported by Surefire as skipped), run against Kafka (-Dbroker.kind=kafka), so the test is
 * known right before Weir catches up. Remove the annotation when Weir does.
 */
@Retention(RetentionPolicy.RUNTIME)
@Target({ElementType.METHOD, ElementType.TYPE})
@ExtendWith(DisabledOnWeir.Condition.class)
public @interface DisabledOnWeir {
    String value();

    final class Condition implements ExecutionCondition {
        @Override
        public ConditionEvaluationResult evaluateExecutionCondition(ExtensionContext ctx) {
            return ctx.getElement()
                    .map(e -> e.getAnnotation(DisabledOnWeir.class))
                    .filter(a -> System.getProperty("broker.kind", "weir").equals("weir"))
                    .map(a -> ConditionEvaluationResult.disabled("not yet in Weir: " + a.value()))
                    .orElse(ConditionEvaluationResult.enabled("runs"));
        }
    }
}
